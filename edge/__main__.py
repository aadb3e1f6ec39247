"""`python -m edge ...`: the edge commands without the rest of the flockid CLI (lighter on a Pi)."""

from edge.cli import edge_app

edge_app(prog_name="python -m edge")
