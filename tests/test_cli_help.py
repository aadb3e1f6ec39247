"""Every command of the one CLI has working, non-empty --help, and the CLI root stays light."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import typer.main

from flockid.cli import app


def _walk(cmd: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    # typer vendors its own click, so groups are recognised by their `commands` mapping.
    out = [path]
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():
            out.extend(_walk(sub, (*path, name)))
    return out


ROOT = typer.main.get_command(app)
COMMANDS = _walk(ROOT)


def test_expected_groups_exist() -> None:
    top = {p[0] for p in COMMANDS if p}
    assert {"data", "train", "export", "eval", "track", "edge", "api", "demo", "bench"} <= top


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "flockid")
def test_help(path: tuple[str, ...]) -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    cmd = ROOT
    for name in path:
        assert hasattr(cmd, "commands")
        cmd = cmd.commands[name]
    assert (cmd.help or cmd.short_help or "").strip(), f"flockid {' '.join(path)} has no help text"


def test_cli_root_loads_no_torch_or_ultralytics() -> None:
    code = (
        "import sys; import flockid.cli; "
        "bad = [m for m in ('torch', 'ultralytics', 'torchvision') if m in sys.modules]; "
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"flockid.cli imported {proc.stdout.strip()} {proc.stderr[-500:]}"
