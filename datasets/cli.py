"""`flockid data ...` commands: mounts the synth commands and the format tools."""

from __future__ import annotations

import typer

data_app = typer.Typer(no_args_is_help=True)


def _mount() -> None:
    from datasets.cli_formats import register as register_formats
    from datasets.cli_synth import register as register_synth

    register_synth(data_app)
    register_formats(data_app)


_mount()
