"""Root of the `flockid` CLI. Sub-command modules import heavy libraries inside their commands,
so `flockid --help` stays fast and an edge box never loads torch."""

from __future__ import annotations

import typer

from flockid import __version__

app = typer.Typer(
    name="flockid",
    help="FlockID: digital IDs for farm-raised birds from ordinary cameras, and flock reports lenders can trust.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

eval_app = typer.Typer(help="Evaluate models and the pipeline (tables, or one JSON object with --json).",
                       no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that print numbers (tables, or one JSON object with --json).",
                        no_args_is_help=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"flockid {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """FlockID command line."""


def _mount() -> None:
    from api.cli import api_app
    from api.cli import register_bench as api_bench
    from datasets.cli import data_app
    from edge.cli import edge_app
    from edge.cli import register_bench as edge_bench
    from flockid.demo import demo_command
    from training.cli import export_command, train_app
    from training.cli import register_bench as training_bench
    from training.cli import register_eval as training_eval
    from vision.cli import register_bench as vision_bench
    from vision.cli import register_eval as vision_eval
    from vision.cli import track_command

    app.add_typer(data_app, name="data", help="Synthetic flock world, dataset formats, validation, crops, frames.")
    app.add_typer(train_app, name="train", help="Retrain the detector (ultralytics) or the re-ID model (torch).")
    app.command("export", help="Export a trained model to ONNX (parity-checked, optional int8).")(export_command)
    app.add_typer(eval_app, name="eval")
    app.command("track", help="Run the whole pipeline on a video or camera URL.")(track_command)
    app.add_typer(edge_app, name="edge", help="The edge runtime: keys, run, verify.")
    app.add_typer(api_app, name="api", help="The lender API: serve, migrate, keys.")
    app.command("demo", help="Run the end-to-end demo on embedded defaults.")(demo_command)
    app.add_typer(bench_app, name="bench")
    training_eval(eval_app)
    vision_eval(eval_app)
    vision_bench(bench_app)
    training_bench(bench_app)
    edge_bench(bench_app)
    api_bench(bench_app)


_mount()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
