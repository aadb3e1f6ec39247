"""What produced a measurement: package versions, interpreter, machine and commit, for the JSON of every
evaluation and benchmark command. A figure that moves between two runs of the same command can then be
traced to what changed underneath it (the 80-bird held-out headcount moved 68 <-> 70 between sessions with
identical input files, and nothing recorded which numpy or onnxruntime either session had)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

# The packages whose version can change a figure: numerics, decoding, inference, training.
PACKAGES = ("numpy", "scipy", "onnxruntime", "opencv-python-headless", "opencv-python", "torch", "ultralytics")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    """The checkout's commit, with `+dirty` when tracked files differ from it; None outside a checkout."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


@lru_cache(maxsize=1)
def environment() -> dict[str, Any]:
    """Versions of PACKAGES (installed ones only), Python, platform, CPU count, thread settings, commit."""
    from flockid import __version__

    return {
        "flockid": __version__,
        "commit": _git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "packages": {name: v for name in PACKAGES if (v := _version(name)) is not None},
        "threads_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS") if k in os.environ},
        "executable": sys.executable,
    }
