"""`flockid train detect|reid`, `flockid export`, `flockid eval detect|reid|track`, `flockid bench pipeline`.

Heavy libraries (torch, ultralytics, onnxruntime) are imported inside the command bodies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from flockid.console import emit, fail

train_app = typer.Typer(no_args_is_help=True)


# What `--recipe default` trains on when no --data is given: the synthetic world, regenerated
# deterministically (same seed, same images) into OUT/data.
DEFAULT_DETECT_DATA = {"images": 1000, "seed": 0}
# Many identities matter more than many epochs for metric learning (400 -> 1,200 ids: open-set Rank-1
# 0.54 -> 0.6+). Seed 10, so the seed-0 set stays free for evaluation.
DEFAULT_REID_DATA = {"identities": 1200, "seed": 10, "per_id": 12, "train_fraction": 0.95}


def _data_or_default(recipe: str, data: Path | None, kind: str, out: Path) -> Path:
    if data is not None:
        return data
    if recipe != "default":
        fail(f"--data is required (recipe {recipe!r}); make synthetic data with `flockid data synth-{kind} OUT` "
             "or pass your own dataset")
    from flockid.console import progress, stderr

    target = Path(out) / "data"
    if kind == "detect":
        if not (target / "data.yaml").is_file():
            from datasets.synth.detect import write_detect_dataset

            stderr.print(f"recipe default: writing the synthetic detection set {DEFAULT_DETECT_DATA} to {target}")
            write_detect_dataset(target, **DEFAULT_DETECT_DATA,  # type: ignore[arg-type]
                                 progress=lambda it, n: progress(it, total=n, description="synth-detect"))
        return target / "data.yaml"
    if not (target / "train").is_dir():
        from datasets.synth.reid import write_reid_dataset

        stderr.print(f"recipe default: writing the synthetic re-ID set {DEFAULT_REID_DATA} to {target}")
        write_reid_dataset(target, flock="mixed", **DEFAULT_REID_DATA,  # type: ignore[arg-type]
                           progress=lambda it, n: progress(it, total=n, description="synth-reid"))
    return target


@train_app.command("detect")
def train_detect(
    data: Path = typer.Option(None, "--data", help="YOLO data.yaml (class = chicken). With --recipe default and "
                                                  "no --data: the synthetic set, regenerated into OUT/data."),
    model: str = typer.Option(None, "--model", help="Model yaml (yolo11n.yaml) or a local .pt to start from."),
    from_: str = typer.Option(None, "--from", help="'default' = fine-tune the shipped detector (same as "
                                                   "--model default)."),
    epochs: int = typer.Option(None, "--epochs", min=1),
    imgsz: int = typer.Option(None, "--imgsz", min=64),
    batch: int = typer.Option(None, "--batch", min=1),
    device: str = typer.Option(None, "--device", help="cpu or a CUDA index (0)."),
    workers: int = typer.Option(None, "--workers", min=0),
    recipe: str = typer.Option("custom", "--recipe", help="default (the shipped detector, from scratch), finetune "
                                                          "(from the shipped detector), smoke, custom."),
    out: Path = typer.Option(Path("runs/detect"), "--out", help="Output folder (resumes an unfinished run)."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue an interrupted run in --out."),
    export: bool = typer.Option(False, "--export", help="Also export best.onnx (parity-checked) after training."),
) -> None:
    """Train the bird detector with ultralytics, offline (no download or pip install is ever tried)."""
    from training.detect import recipe_config, train_detector

    if model and from_:
        fail("give either --model or --from, not both")
    try:
        cfg = recipe_config(recipe, data=_data_or_default(recipe, data, "detect", out), model=model or from_,
                            epochs=epochs, imgsz=imgsz, batch=batch, device=device, workers=workers)
        record = train_detector(cfg, out, resume=resume)
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    summary: dict[str, Any] = {"best": str(Path(out) / "best.pt"), **record["metrics"],
                               "train_wall_s": record["train_wall_s"]}
    if export:
        from training.export import export_detector

        summary.update({f"export_{k}": v for k, v in export_detector(
            Path(out) / "best.pt", Path(out) / "best.onnx", calib=cfg.data).items()})
    emit(summary, as_json=False, title="detector training")


@train_app.command("reid")
def train_reid_cmd(
    data: Path = typer.Option(None, "--data", help="Crop set (with train/) or a crop folder <id>/*.jpg."),
    epochs: int = typer.Option(None, "--epochs", min=1),
    imgsz: int = typer.Option(None, "--imgsz", min=32),
    dim: int = typer.Option(None, "--dim", min=8),
    width: int = typer.Option(None, "--width", min=8, help="Backbone width (channels of the first stage)."),
    p: int = typer.Option(None, "--p", min=2, help="Identities per batch."),
    k: int = typer.Option(None, "--k", min=2, help="Crops per identity per batch."),
    lr: float = typer.Option(None, "--lr"),
    loss: str = typer.Option(None, "--loss", help="triplet, arcface or triplet+arcface."),
    threads: int = typer.Option(None, "--threads", min=0),
    recipe: str = typer.Option("custom", "--recipe", help="default (the shipped re-ID model), smoke, custom."),
    out: Path = typer.Option(Path("runs/reid"), "--out"),
    resume: bool = typer.Option(True, "--resume/--no-resume"),
    export: bool = typer.Option(False, "--export", help="Also export best.onnx (parity-checked)."),
) -> None:
    """Train the bird re-ID model (torch metric learning from scratch: P x K batches, triplet + ArcFace)."""
    from pydantic import ValidationError

    from training.reid_train import reid_recipe_config, train_reid

    try:
        cfg = reid_recipe_config(recipe, data=_data_or_default(recipe, data, "reid", out), epochs=epochs,
                                 imgsz=imgsz, dim=dim, width=width, p=p, k=k, lr=lr, loss=loss, threads=threads)
        record = train_reid(cfg, out, resume=resume)
    except (ValueError, FileNotFoundError, ValidationError) as exc:
        fail(str(exc))
    last = record["history"][-1] if record["history"] else {}
    summary: dict[str, Any] = {"best": str(Path(out) / "best.pt"), "best_epoch": record["best_epoch"],
                               "match_threshold": record["match_threshold"], **last,
                               "train_wall_s": record["train_wall_s"]}
    if export:
        from training.export import export_reid

        summary.update({f"export_{k}": v for k, v in export_reid(Path(out) / "best.pt",
                                                                 Path(out) / "best.onnx").items()})
    emit(summary, as_json=False, title="re-ID training")


def export_command(
    model: Path = typer.Argument(..., help="A detector (ultralytics) or re-ID (FlockID) .pt checkpoint."),
    format: str = typer.Option("onnx", "--format", help="Only onnx."),
    imgsz: int = typer.Option(None, "--imgsz", help="Detector input size (default: the trained size)."),
    out: Path = typer.Option(None, "--out", help="Output .onnx (default: next to MODEL)."),
    int8: bool = typer.Option(False, "--int8", help="Also write an int8 (static QDQ) model, calibrated on --calib."),
    calib: Path = typer.Option(None, "--calib", help="data.yaml / image folder (detector) or crop set (re-ID)."),
    tolerance: float = typer.Option(None, "--tolerance", help="Max |torch - onnx| allowed by the parity check."),
    opset: int = typer.Option(17, "--opset"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Export to ONNX with a parity check against the torch model; optionally int8 with a before/after report."""
    from training.export import ParityError, checkpoint_kind, export_detector, export_reid

    if format != "onnx":
        fail(f"--format {format!r}: valid formats: ['onnx']")
    if int8 and calib is None:
        fail("--int8 needs --calib DATA (images the quantiser calibrates on)")
    target = out or Path(model).with_suffix(".onnx")
    try:
        kind = checkpoint_kind(model)
        kw: dict[str, Any] = {"calib": calib, "opset": opset}
        if tolerance is not None:
            kw["tolerance"] = tolerance
        if kind == "detect":
            result = export_detector(model, target, imgsz=imgsz, **kw)
        else:
            result = export_reid(model, target, **kw)
        if int8:
            from training.int8 import int8_report

            result["int8"] = int8_report(kind, target, calib)
    except (ValueError, FileNotFoundError, ParityError) as exc:
        fail(str(exc))
    emit(result, as_json=as_json, title=f"export {kind}")


def register_eval(eval_app: typer.Typer) -> None:
    """Add the training-side evaluation commands to `flockid eval`."""

    @eval_app.command("detect")
    def eval_detect(
        data: Path = typer.Option(..., "--data", help="YOLO data.yaml."),
        model: Path = typer.Option(None, "--model", help="Detector .onnx (default: the shipped one)."),
        split: str = typer.Option("val", "--split"),
        max_images: int = typer.Option(None, "--max-images", min=1),
        update_card: bool = typer.Option(False, "--update-card", help="Write the metrics into the model card."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """mAP50, mAP50-95, precision, recall of the ONNX detector via the edge's detector code."""
        from flockid.console import stderr
        from training.eval_detect import evaluate_detector, update_card_metrics
        from vision.weights import default_detector_path

        m = model or default_detector_path()
        with stderr.status("evaluating detector") as status:
            def tick(i: int, n: int) -> None:
                status.update(f"evaluating detector: image {i}/{n}")

            try:
                result = evaluate_detector(m, data, split=split, max_images=max_images, on_image=tick)
            except (ValueError, FileNotFoundError) as exc:
                fail(str(exc))
        if update_card:
            key = f"{Path(data).parent.name}/{split}"
            update_card_metrics(m, key, {k: v for k, v in result.items() if k not in ("model", "data")})
        emit(result, as_json=as_json, title="detector evaluation", rows_key="groups", measured=True)

    @eval_app.command("detect-states")
    def eval_detect_states(
        seq_dirs: list[Path] = typer.Argument(..., help="MOT sequence dirs with img1/, birds.json, frames.csv."),
        model: Path = typer.Option(None, "--model", help="Detector .onnx (default: the shipped one)."),
        every: int = typer.Option(5, "--every", min=1, help="score every N-th annotated frame"),
        conf: float = typer.Option(0.25, "--conf", min=0.0, max=1.0),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Detector recall per health state (ok / sick / dead) on synthetic sequences."""
        from flockid.console import stderr
        from training.eval_health_recall import recall_by_health_state
        from vision.weights import default_detector_path

        with stderr.status("evaluating detector") as status:
            def tick(i: int, n: int) -> None:
                status.update(f"evaluating detector: frame {i}/{n}")

            try:
                result = recall_by_health_state(model or default_detector_path(), list(seq_dirs), every=every,
                                                conf=conf, on_frame=tick)
            except (ValueError, FileNotFoundError) as exc:
                fail(str(exc))
        emit(result, as_json=as_json, title="detector recall by health state", rows_key="rows", measured=True)

    @eval_app.command("reid")
    def eval_reid(
        data: Path = typer.Option(..., "--data", help="Crop set with query/ and gallery/ (open-set), or the "
                                                    "later crops (closed-set, with --gallery)."),
        model: Path = typer.Option(None, "--model", help="Re-ID .onnx (default: the shipped one)."),
        gallery: Path = typer.Option(None, "--gallery", help="Enrolled birds (closed-set protocol)."),
        threshold: float = typer.Option(None, "--threshold", help="Operating similarity (default: the card's)."),
        update_card: bool = typer.Option(False, "--update-card", help="Write the metrics into the model card."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Rank-1, Rank-5, mAP (+ unknown-bird rejection) of the ONNX re-ID model."""
        from training.eval_detect import update_card_metrics
        from training.eval_reid import evaluate_reid
        from vision.weights import default_reid_path

        m = model or default_reid_path()
        try:
            result = evaluate_reid(m, data, gallery=gallery, threshold=threshold)
        except (ValueError, FileNotFoundError) as exc:
            fail(str(exc))
        if update_card:
            update_card_metrics(m, f"{Path(data).name}/{result['protocol']}",
                                {k: v for k, v in result.items() if k not in ("model", "query", "gallery")})
        emit(result, as_json=as_json, title=f"re-ID evaluation ({result['protocol']})", measured=True)

    @eval_app.command("reid-calibration")
    def eval_reid_calibration(
        data: list[Path] = typer.Option(..., "--data", help="Crop sets with query/ and gallery/; give a mixed "
                                                          "and a uniform one. Not the sets you report metrics on."),
        model: Path = typer.Option(None, "--model", help="Re-ID .onnx (default: the shipped one)."),
        update_card: bool = typer.Option(False, "--update-card",
                                         help="Write the block into the card as `similarity_calibration`."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Same-bird / different-bird similarity percentiles: the edge derives its appearance thresholds
        (tracker, registry, headcount) from them."""
        from training.eval_reid import similarity_calibration
        from vision.weights import card_path, default_reid_path, read_card

        m = model or default_reid_path()
        try:
            block = similarity_calibration(m, data)
        except (ValueError, FileNotFoundError) as exc:
            fail(str(exc))
        if update_card:
            card = read_card(m)
            if not card:
                fail(f"--update-card: {m} has no model card next to it")
            card["similarity_calibration"] = block
            import json

            card_path(m).write_text(json.dumps(card, indent=2) + "\n")
        emit(block, as_json=as_json, title="re-ID similarity calibration")


    @eval_app.command("track")
    def eval_track(
        seqs: list[Path] = typer.Argument(..., help="MOTChallenge sequence folders (gt/gt.txt + img1/ or video)."),
        detector: Path = typer.Option(None, "--detector", help="Detector .onnx (default: the shipped one)."),
        reid: Path = typer.Option(None, "--reid", help="Re-ID .onnx for the flockid tracker (default: shipped)."),
        tracker: list[str] = typer.Option(["flockid"], "--tracker",
                                          help="flockid, bytetrack, botsort; repeat to compare on the same "
                                               "detections."),
        max_frames: int = typer.Option(None, "--max-frames", min=1, help="Only the first N frames of each."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """HOTA, IDF1, MOTA, ID switches (+ per bird-hour) and headcount error, via trackeval."""
        from flockid.console import stderr
        from training.eval_track import evaluate_tracking
        from vision.weights import default_detector_path, default_reid_path

        det = detector or default_detector_path()
        rid = reid or (default_reid_path() if "flockid" in tracker else None)
        count = [0]
        with stderr.status("tracking") as status:
            def tick() -> None:
                count[0] += 1
                if count[0] % 10 == 0:
                    status.update(f"tracking: frame {count[0]}")

            try:
                result = evaluate_tracking(seqs, detector=det, reid=rid, trackers=list(tracker),
                                           max_frames=max_frames, on_frame=tick)
            except (ValueError, FileNotFoundError) as exc:
                fail(str(exc))
        emit(result, as_json=as_json, title="tracking evaluation", rows_key="rows", measured=True)


def register_bench(bench_app: typer.Typer) -> None:
    """Add `flockid bench pipeline` (it compares against ultralytics, so it lives here)."""

    @bench_app.command("pipeline")
    def bench_pipeline_cmd(
        detector: Path = typer.Option(None, "--detector", help="Detector .onnx (default: the shipped one)."),
        reid: Path = typer.Option(None, "--reid", help="Re-ID .onnx (default: the shipped one)."),
        pt: Path = typer.Option(None, "--pt", help="Torch weights for the ultralytics .pt run (default: the "
                                                   "checkpoint shipped next to the detector, if any)."),
        seq: Path = typer.Option(None, "--seq", help="MOT sequence to read frames from (default: synthetic)."),
        frames: int = typer.Option(60, "--frames", min=6),
        imgsz: int = typer.Option(None, "--imgsz", help="Input size (default: the detector card's)."),
        threads: int = typer.Option(2, "--threads", min=1),
        block: int = typer.Option(10, "--block", min=1, help="Frames each runner takes per turn."),
        birds: int = typer.Option(40, "--birds", min=1, help="Flock size of the synthetic frames (no --seq)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the synthetic frames (no --seq)."),
        detector_spin: bool = typer.Option(False, "--detector-spin",
                                           help="The pipeline's detector threads busy-wait (detector_spin)."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Pipeline (detect+embed+track+registry+signals) vs bare onnxruntime vs ultralytics track()."""
        from training.bench import bench_pipeline, sequence_frames, synthetic_frames
        from vision.pipeline import PipelineConfig
        from vision.weights import default_detector_path, default_reid_path

        det = detector or default_detector_path()
        if imgsz is None:
            from vision.weights import read_card

            imgsz = int(read_card(det).get("imgsz") or 320)
        weights = pt or (Path(det).with_suffix(".pt") if Path(det).with_suffix(".pt").is_file() else None)
        try:
            imgs = sequence_frames(seq, frames) if seq else synthetic_frames(frames, seed=seed, birds=birds)
            result = bench_pipeline(imgs, detector=det, reid=reid or default_reid_path(), pt=weights,
                                    imgsz=imgsz, threads=threads, block=block,
                                    config=PipelineConfig(detector_spin=detector_spin))
        except (ValueError, FileNotFoundError) as exc:
            fail(str(exc))
        emit(result, as_json=as_json, title="pipeline benchmark", measured=True)
