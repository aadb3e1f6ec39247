"""Make ultralytics offline-safe. Call `ensure_offline()` before the first `import ultralytics`.

Ultralytics reads its environment once, at import: whether it may go online, whether it may
pip-install missing packages, and where its settings and fonts live. Without these it tries
GitHub for a font (`Arial.ttf`) the first time it draws anything, pings its hub, and may
`pip install` a package it thinks is missing. We set all of that up front, in a cache dir of
our own (never the repository), and copy a font that ships with matplotlib under the names
ultralytics looks for.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

CACHE_ENV = "FLOCKID_ULTRALYTICS_DIR"
_FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")


def default_cache_dir() -> Path:
    """`$FLOCKID_ULTRALYTICS_DIR`, else `$XDG_CACHE_HOME/flockid/ultralytics` (~/.cache by default)."""
    if env := os.environ.get(CACHE_ENV):
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "flockid" / "ultralytics"


def _dejavu_font() -> Path:
    import matplotlib

    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    if not font.is_file():
        raise FileNotFoundError(f"matplotlib's DejaVuSans.ttf not found at {font}; cannot stage an offline font")
    return font


def ensure_offline(cache_dir: Path | None = None) -> Path:
    """Set the ultralytics environment for offline use and stage its fonts. Returns the config dir.

    Idempotent. If ultralytics was already imported with another config dir, raise: its
    settings are fixed at import and a silent mismatch would let it go online.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    root = root.expanduser().resolve()
    already = "ultralytics" in sys.modules
    current = os.environ.get("YOLO_CONFIG_DIR")
    if already:
        if current is None or Path(current).resolve() != root:
            if cache_dir is None and current is not None:
                return Path(current)
            raise RuntimeError(
                f"ultralytics was imported before training.offline.ensure_offline(); its config dir is "
                f"{current!r}, not {str(root)!r}. Call ensure_offline() before importing ultralytics."
            )
        return root
    font = _dejavu_font()
    # ultralytics' USER_CONFIG_DIR is `$YOLO_CONFIG_DIR/Ultralytics`; check_font() looks there first
    folder = root / "Ultralytics"
    folder.mkdir(parents=True, exist_ok=True)
    for name in _FONT_NAMES:
        target = folder / name
        if not target.is_file():
            shutil.copyfile(font, target)
    os.environ["YOLO_CONFIG_DIR"] = str(root)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "0"  # never `pip install` anything at run time
    os.environ.setdefault("YOLO_VERBOSE", "True")
    # Hub / analytics / MLflow-style loggers that could phone home.
    os.environ["HUB_API_KEY"] = os.environ.get("HUB_API_KEY", "")
    os.environ.setdefault("WANDB_MODE", "disabled")
    os.environ.setdefault("MLFLOW_TRACKING_URI", "")
    return root


def import_ultralytics():  # type: ignore[no-untyped-def]
    """Return the `ultralytics` module, imported offline-safe, with its network features off."""
    ensure_offline()
    import contextlib
    import logging

    # On a fresh config dir the import itself prints a settings banner to stdout, which would corrupt
    # `--json` output (seen with `flockid eval track --tracker bytetrack --json`).
    with contextlib.redirect_stdout(sys.stderr):
        import ultralytics
        from ultralytics.utils import LOGGER, SETTINGS

    # ultralytics logs to stdout; our commands keep stdout for results (`--json` = one JSON object)
    for handler in LOGGER.handlers:
        if isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) is sys.stdout:
            handler.setStream(sys.stderr)

    # sync = anonymous analytics events; the rest are logger integrations that may call out.
    off = {k: False for k in ("sync", "hub", "wandb", "mlflow", "comet", "dvc", "clearml", "neptune",
                              "raytune", "tensorboard") if k in SETTINGS}
    changed = {k: v for k, v in off.items() if SETTINGS.get(k) != v}
    if changed:
        SETTINGS.update(changed)
    return ultralytics
