"""`flockid data synth, synth-detect, synth-reid, stats`."""

from __future__ import annotations

from pathlib import Path

import typer


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 640x360") from None
    return w, h


def register(data_app: typer.Typer) -> None:
    """Add this module's commands to `flockid data`."""

    @data_app.command("synth")
    def synth(
        out: Path = typer.Argument(..., help="Output dir (a MOT sequence; one per camera with --cameras > 1)."),
        seed: int = typer.Option(0, help="Scene and behaviour seed."),
        appearance_seed: int | None = typer.Option(None, help="Bird appearance seed (default: --seed)."),
        birds: int = typer.Option(40, help="Birds on the farm."),
        frames: int = typer.Option(600, help="Frames (instants) to render."),
        fps: float = typer.Option(10.0, help="Frame rate written to seqinfo.ini and the video."),
        time_step: float | None = typer.Option(None, help="Simulated seconds between frames (default 1/fps)."),
        size: str = typer.Option("640x360", help="Frame size WIDTHxHEIGHT."),
        flock: str = typer.Option("mixed", help="mixed (free-range, varied) or uniform (commercial)."),
        camera: str = typer.Option("oblique", help="oblique, topdown or random."),
        scene: str = typer.Option("random", help="run, barn or random."),
        cameras: int = typer.Option(1, help="Cameras with partly overlapping views."),
        night_fraction: float = typer.Option(0.0, help="Fraction of frames at night (infra-red)."),
        start_day: float = typer.Option(28.0, help="Age of the flock in days at the first frame."),
        sick: int = typer.Option(0, help="Birds that fall sick during the sequence."),
        dead: int = typer.Option(0, help="Birds that die during the sequence."),
        images: bool = typer.Option(True, "--images/--no-images", help="Write img1/*.jpg."),
        video: bool = typer.Option(True, "--video/--no-video", help="Write video.mp4."),
    ) -> None:
        """Render a seeded synthetic farm sequence with MOT ground truth, birds.json and frames.csv."""
        import time

        from pydantic import ValidationError

        from datasets.synth import FlockWorld, WorldConfig
        from datasets.synth.config import CAMERA_KINDS, FLOCK_KINDS, SCENE_KINDS
        from datasets.synth.sequence import write_sequence
        from flockid.console import fail, progress, stderr

        for name, val, valid in (("--flock", flock, FLOCK_KINDS), ("--camera", camera, CAMERA_KINDS),
                                 ("--scene", scene, SCENE_KINDS)):
            if val not in valid:
                fail(f"{name} {val!r}: valid values are {', '.join(valid)}")
        try:
            cfg = WorldConfig(
                seed=seed, appearance_seed=appearance_seed, birds=birds, frames=frames, fps=fps,
                time_step_s=time_step, size_wh=_size(size), flock=flock, camera=camera, scene=scene,  # type: ignore[arg-type]
                cameras=cameras, night_fraction=night_fraction, start_day=start_day, sick_birds=sick,
                dead_birds=dead,
            )
        except ValidationError as exc:
            fail(f"invalid options: {exc}")
            return
        t0 = time.perf_counter()
        world = FlockWorld(cfg)
        t1, c1 = time.perf_counter(), time.process_time()
        seqs = write_sequence(world, out, images=images, video=video,
                              progress=lambda it, n: progress(it, total=n, description="synth"))
        t2, c2 = time.perf_counter(), time.process_time()
        n = frames * cameras
        # CPU seconds as well as wall: on a shared machine the wall clock says little about the generator.
        stderr.print(
            f"wrote {', '.join(str(s) for s in seqs)}: {n} frames, scene={world.scene_kind}, "
            f"camera={world.camera_kind}; setup {t1 - t0:.2f}s, render+write {t2 - t1:.2f}s wall "
            f"({n / max(t2 - t1, 1e-9):.1f} frames/s), {c2 - c1:.2f}s CPU ({n / max(c2 - c1, 1e-9):.1f} frames/s)"
        )

    @data_app.command("synth-detect")
    def synth_detect(
        out: Path = typer.Argument(..., help="Output dir for the YOLO dataset."),
        images: int = typer.Option(2000, help="Images in total (train + val)."),
        size: str = typer.Option("640x360", help="Image size WIDTHxHEIGHT."),
        seed: int = typer.Option(0, help="Seed."),
        night_fraction: float = typer.Option(0.25, help="Fraction of images at night (infra-red)."),
        val_fraction: float = typer.Option(0.15, help="Fraction of images (whole worlds) held out for val."),
        per_world: int = typer.Option(20, help="Images drawn from each random world."),
    ) -> None:
        """A single-class (`chicken`) YOLO dataset from many randomised worlds, with splits.json."""
        from datasets.synth.detect import write_detect_dataset
        from flockid.console import fail, progress, stderr

        if images < 2:
            fail("--images must be >= 2")
        res = write_detect_dataset(out, images=images, size_wh=_size(size), seed=seed,
                                   night_fraction=night_fraction, val_fraction=val_fraction, per_world=per_world,
                                   progress=lambda it, n: progress(it, total=n, description="synth-detect"))
        stderr.print(f"wrote {res['data_yaml']}: {res['train']} train, {res['val']} val images "
                     f"({res['val_night']} val at night), {res['boxes']} boxes")

    @data_app.command("synth-reid")
    def synth_reid(
        out: Path = typer.Argument(..., help="Output dir for the re-ID crop dataset."),
        identities: int = typer.Option(300, help="Number of bird identities."),
        flock: str = typer.Option("mixed", help="mixed or uniform."),
        per_id: int = typer.Option(8, help="Crops per identity (train/query+gallery)."),
        seed: int = typer.Option(0, help="Seed."),
        train_fraction: float = typer.Option(0.5, help="Fraction of identities used for training."),
    ) -> None:
        """Crops per identity: train/, query/ + gallery/ (unseen identities), enrol/ + later/ (closed set)."""
        from datasets.synth.config import FLOCK_KINDS
        from datasets.synth.reid import write_reid_dataset
        from flockid.console import fail, progress, stderr

        if flock not in FLOCK_KINDS:
            fail(f"--flock {flock!r}: valid values are {', '.join(FLOCK_KINDS)}")
        if identities < 4:
            fail("--identities must be >= 4")
        res = write_reid_dataset(out, identities=identities, flock=flock, per_id=per_id, seed=seed,
                                 train_fraction=train_fraction,
                                 progress=lambda it, n: progress(it, total=n, description="synth-reid"))
        stderr.print(f"wrote {out}: " + ", ".join(f"{k}={v}" for k, v in res.items()))

    @data_app.command("stats")
    def stats(
        directory: Path = typer.Argument(..., help="A MOT sequence dir, or a dir of sequences."),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Difficulty of a sequence: occlusion, visibility < 0.5, re-entries, look-alike pairs, night."""
        from datasets.stats import dataset_stats
        from flockid.console import emit, fail

        try:
            res = dataset_stats(directory)
        except (FileNotFoundError, ValueError) as exc:
            fail(str(exc))
            return
        rows = "per_sequence" if res["sequences"] > 1 else None
        if rows and not json_out:
            # A terminal table has room for the headline columns only; --json has them all.
            keep = ("sequence", "boxes", "ids", "frac_visibility_lt_0_5", "reentry_events", "night_fraction")
            res = dict(res, per_sequence=[{k: s[k] for k in keep} for s in res["per_sequence"]])
        emit(res, as_json=json_out, title=f"difficulty of {directory}", rows_key=rows)
