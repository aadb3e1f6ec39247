"""`flockid data convert, validate, crops, frames`."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import typer


def _rel(path: str) -> str:
    """Paths under the working dir print relative (short, and clickable in editors and terminals)."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def _names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise typer.BadParameter("--names needs at least one name, comma separated")
    return names


def validate_command(
    path: Path = typer.Argument(..., help="data.yaml / dataset dir, COCO .json (or dir), or MOT sequence dir."),
    fmt: str | None = typer.Option(None, "--format", help="yolo|coco|mot (default: detect)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout."),
    max_lines: int = typer.Option(0, "--max-lines", min=0, help="Print at most this many problem lines (0 = all)."),
) -> None:
    """Find every problem in a dataset, each with its file and line. Exit 1 if any error."""
    from datasets.validate import validate
    from flockid.console import emit, fail, progress

    try:
        report = validate(path, fmt, progress=progress)
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
        return
    if as_json:
        emit(report.to_dict(), as_json=True)
    else:
        shown = report.issues if not max_lines else report.issues[:max_lines]
        for issue in shown:
            typer.echo(replace(issue, path=_rel(issue.path)).format())
        if len(shown) < len(report.issues):
            typer.echo(f"... {len(report.issues) - len(shown)} more (see --json)")
        summary = {k: v for k, v in report.summary().items() if v != {}}
        summary["result"] = "ok" if report.ok else "FAILED"
        emit(summary, as_json=False, title=f"validate {report.format}: {path}")
    if not report.ok:
        raise typer.Exit(1)


def convert_command(
    src: Path = typer.Argument(..., help="Source dataset (YOLO data.yaml/dir, COCO json/dir, MOT sequence(s))."),
    dst: Path = typer.Argument(..., help="Output folder (must be empty or absent)."),
    to: str = typer.Option(..., "--to", help="yolo|coco|mot"),
    src_format: str | None = typer.Option(None, "--from", help="Source format (default: detect)."),
    names: str | None = typer.Option(
        None, "--names", help="Class names for MOT sources, comma separated (MOT class 1 = first)."
    ),
    frame_rate: float = typer.Option(25.0, "--frame-rate", min=0.1, help="frameRate for MOT output."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout."),
) -> None:
    """Convert between YOLO, COCO and MOTChallenge; class names are carried over."""
    from datasets.convert import convert
    from flockid.console import emit, fail, progress

    try:
        result = convert(
            src, dst, to, src_format=src_format, names=_names(names), frame_rate=frame_rate, progress=progress
        )
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        fail(str(exc))
        return
    emit(result, as_json=as_json, title=f"convert -> {to}")


def crops_command(
    data: Path = typer.Argument(..., help="YOLO dataset whose classes are individual birds, or MOT sequence(s)."),
    out: Path = typer.Argument(..., help="Output folder (must be empty or absent)."),
    split_by: str = typer.Option("identity", "--split-by", help="identity (open-set) or time (closed-set)."),
    query_frac: float = typer.Option(
        0.2, "--query-frac", min=0.01, max=0.99, help="Share of an eval bird's crops used as queries."
    ),
    train_frac: float = typer.Option(
        0.5,
        "--train-frac",
        min=0.01,
        max=0.99,
        help="Share of birds used for training (--split-by identity).",
    ),
    enrol_frac: float = typer.Option(
        0.5,
        "--enrol-frac",
        min=0.01,
        max=0.99,
        help="Share of each bird's earliest crops to enrol (--split-by time).",
    ),
    min_size: int = typer.Option(16, "--min-size", min=1, help="Skip boxes whose shorter side is below this (px)."),
    pad: float = typer.Option(0.1, "--pad", min=0.0, max=1.0, help="Context added on each side (fraction of box)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the identity/query draw."),
    fmt: str | None = typer.Option(None, "--format", help="yolo|mot (default: detect)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout."),
) -> None:
    """Cut a re-ID crop dataset: OUT/{train,query,gallery}/<bird>/ or OUT/{enrol,later}/<bird>/."""
    from datasets.crops import make_crops
    from flockid.console import emit, fail, progress

    try:
        result = make_crops(
            data,
            out,
            split_by=split_by,
            query_frac=query_frac,
            train_frac=train_frac,
            enrol_frac=enrol_frac,
            min_size=min_size,
            pad=pad,
            seed=seed,
            fmt=fmt,
            progress=progress,
        )
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        fail(str(exc))
        return
    emit(result, as_json=as_json, title="re-ID crops")


def frames_command(
    video: str = typer.Argument(..., help="Video file or camera URL (rtsp://...)."),
    out: Path = typer.Argument(..., help="Output folder."),
    every: int = typer.Option(30, "--every", min=1, help="Keep every N-th frame."),
    max_frames: int | None = typer.Option(None, "--max", min=1, help="Stop after K frames."),
    model: Path | None = typer.Option(
        None, "--model", help="ONNX detector: pre-annotate as YOLO labels + CVAT annotations.xml."
    ),
    conf: float = typer.Option(0.25, "--conf", min=0.0, max=1.0, help="Detector confidence for pre-annotation."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout."),
) -> None:
    """Sample frames from a farm video for labelling, optionally pre-annotated by a model."""
    from datasets.frames import sample_frames
    from flockid.console import emit, fail, progress

    if model is not None and not model.is_file():
        fail(f"--model {model}: no such file")
    try:
        result = sample_frames(
            video, out, every=every, max_frames=max_frames, model=model, conf=conf, progress=progress
        )
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
        return
    emit(result, as_json=as_json, title="frames")


def register(data_app: typer.Typer) -> None:
    """Add this module's commands to `flockid data`."""
    data_app.command("validate")(validate_command)
    data_app.command("convert")(convert_command)
    data_app.command("crops")(crops_command)
    data_app.command("frames")(frames_command)
