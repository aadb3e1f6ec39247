"""`flockid edge ...` and `flockid bench edge`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

edge_app = typer.Typer(no_args_is_help=True)


@edge_app.command("init")
def init_command(
    out: Path = typer.Option(..., "--out", help="Folder for device.key (0600), device.pub.pem, device.json."),
    device_id: str = typer.Option(..., "--device-id", help="Unique id of this box."),
    farm_id: str = typer.Option(None, "--farm-id", help="Farm this box watches (recorded in device.json)."),
) -> None:
    """Create the device's Ed25519 key pair and print the public key for registration with the API."""
    from edge.keys import init_device
    from flockid.console import fail

    try:
        ident = init_device(out, device_id, farm_id=farm_id)
    except (FileExistsError, ValueError) as exc:
        fail(str(exc))
        return
    typer.echo(ident.public_key_pem, nl=False)
    typer.echo(f"# key_id {ident.key_id}; private key {ident.private_key_path} (mode 0600)", err=True)
    typer.echo(
        f'# register: POST /v1/devices {{"device_id": "{device_id}", "farm_id": ..., '
        f'"public_key_pem": <the PEM above>}}',
        err=True,
    )


def _load(config: Path) -> Any:
    """The typed config, or a CLI error naming the file and the bad key."""
    from edge.config import ConfigError, load_config
    from flockid.console import fail

    try:
        return load_config(config)
    except ConfigError as exc:
        fail(str(exc))
        raise  # fail() exits; this only satisfies type checkers


@edge_app.command("run")
def run_command(
    config: Path = typer.Option(..., "--config", "-c", help="edge.yaml"),
    max_seconds: float = typer.Option(None, "--max-seconds", help="Stop after this long (wall-clock mode)."),
) -> None:
    """Run the edge box: cameras -> pipelines -> signed reports -> outbox -> API."""
    from edge.app import EdgeApp
    from edge.logs import setup_logging
    from flockid.console import fail

    cfg = _load(config)
    setup_logging(cfg.log_level)
    _dump_stacks_on_sigusr1()
    try:
        app = EdgeApp(cfg)
    except (ValueError, FileNotFoundError, PermissionError) as exc:
        fail(str(exc))
        return
    if cfg.clock == "source":
        restore = app.install_signal_handlers()
        try:
            stats = app.run_until_exhausted()
        finally:
            restore()
            app.close()
        typer.echo(
            json.dumps(
                {
                    "frames": stats.frames,
                    "processed": stats.processed,
                    "reports": stats.reports,
                    "registry_snapshots": stats.registry_snapshots,
                    "uploaded": stats.uploaded,
                    "backlog": stats.backlog,
                }
            )
        )
        return
    app.run(max_seconds=max_seconds)


def _dump_stacks_on_sigusr1() -> None:
    """`kill -USR1 <pid>` writes every thread's stack to stderr (the journal): how to see where a box
    that stopped reporting, or ignores SIGTERM, is stuck. faulthandler writes from C, taking no lock."""
    import faulthandler
    import signal
    import sys

    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)


@edge_app.command("verify")
def verify_command(
    reports: Path = typer.Argument(..., help="reports.jsonl (one SignedEnvelope per line) or an outbox .sqlite"),
    public_key: Path = typer.Option(..., "--public-key", help="The device's public key PEM."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout."),
) -> None:
    """Check signatures and hash links of a device's chain offline. Exit 1 when anything is wrong."""
    from edge.verify import verify_file
    from flockid.console import emit, fail

    try:
        result = verify_file(reports, public_key)
    except (OSError, ValueError) as exc:
        fail(str(exc))
        return
    emit(result, as_json=as_json, title=f"chain of {reports}", rows_key="problems")
    if not result["ok"]:
        raise typer.Exit(1)


@edge_app.command("status")
def status_command(
    config: Path = typer.Option(..., "--config", "-c", help="edge.yaml"),
    as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout."),
) -> None:
    """Outbox backlog, chain head and last upload of this box."""
    from edge.outbox import Outbox
    from flockid.console import emit, fail

    cfg = _load(config)
    if not cfg.outbox.path.exists():
        fail(f"{cfg.outbox.path}: no outbox yet (the box has not written a report)")
        return
    ob = Outbox(cfg.outbox.path)
    try:
        head_seq, head_hash = ob.head()
        counts = ob.counts()
        last = ob.last_sent_at()
        nxt = ob.next_unsent()
        result = {
            "device_id": cfg.device_id,
            "outbox": str(cfg.outbox.path),
            "head_seq": head_seq,
            "head_hash": head_hash,
            "backlog": counts["pending"] + counts["conflict"],
            "pending": counts["pending"],
            "sent_kept": counts["sent"],
            "conflict": counts["conflict"],
            "last_upload": last,
            "last_error": nxt.last_error if nxt else None,
            "outbox_bytes": ob.file_bytes(),
        }
    finally:
        ob.close()
    emit(result, as_json=as_json, title="edge status")


def register_bench(bench_app: typer.Typer) -> None:
    """Add `flockid bench edge`."""

    @bench_app.command("edge")
    def bench_edge(
        sizes: str = typer.Option("320,416,640", "--sizes", help="Comma-separated input sizes."),
        seconds: float = typer.Option(6.0, "--seconds", help="Measuring time per configuration."),
        fps: float = typer.Option(5.0, "--camera-fps", help="Camera rate for the capacity estimate."),
        detector: Path = typer.Option(None, "--detector", help="fp32 ONNX detector (default: shipped)."),
        models_dir: Path = typer.Option(
            None, "--models-dir", help="Folder with detector_<size>.onnx / detector_<size>.int8.onnx."
        ),
        as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout."),
    ) -> None:
        """Frames/s, CPU% and RSS of the edge pipeline per input size and precision; cameras per box."""
        from edge.bench import run_bench
        from flockid.console import emit, fail

        try:
            size_list = [int(s) for s in sizes.split(",") if s.strip()]
        except ValueError:
            fail(f"--sizes must be comma-separated integers, got {sizes!r}")
            return
        result = run_bench(size_list, seconds=seconds, camera_fps=fps, detector=detector, models_dir=models_dir)
        emit(result, as_json=as_json, title="flockid bench edge", rows_key="rows", measured=True)
