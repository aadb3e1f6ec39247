"""`python -m edge ...`: the edge commands without the rest of the flockid CLI (lighter on a Pi)."""

import os

# An entry point, not a library module: pin BLAS to one thread before numpy loads (small matrices,
# shared cores: multi-threaded BLAS was up to 20x slower for the registry and tracker here).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from edge.cli import edge_app

edge_app(prog_name="python -m edge")
