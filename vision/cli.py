"""`flockid track` (the whole pipeline on a video, camera or URL) and `flockid eval count`
(verified-headcount error and dead-bird alerts on MOT sequences with birds.json).

Heavy imports (cv2, onnxruntime, the pipeline) happen inside the command bodies.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import typer

from flockid.console import emit, fail, progress


# ---------------------------------------------------------------------------------------------- sources
def _open_source(source: str, fps: float | None) -> tuple[Iterator[tuple[int, Any, float]], int | None, float]:
    """(frames as (index, bgr, timestamp), total or None, fps) for a file, a URL, a USB index or a MOT dir."""
    import cv2

    path = Path(source)
    if path.is_dir():
        from datasets.formats.mot import iter_sequence_frames, read_seqinfo

        info = read_seqinfo(path)
        rate = fps or float(info["frame_rate"])
        times = frame_times(path)

        def gen_dir() -> Iterator[tuple[int, Any, float]]:
            for k, (frame_no, img) in enumerate(iter_sequence_frames(path)):
                yield k, img, times.get(frame_no, k / rate)

        return gen_dir(), int(info["seq_length"]), rate
    if source.isdigit():
        cap = cv2.VideoCapture(int(source))
        live = True
    else:
        if "://" not in source and not path.exists():
            raise FileNotFoundError(f"SOURCE {source}: no such file (nor a URL or a camera index)")
        cap = cv2.VideoCapture(source)
        live = "://" in source
    if not cap.isOpened():
        raise ValueError(f"SOURCE {source}: cannot open video")
    rate = fps or float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or 10.0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) or None
    start = time.time() if live else 0.0

    def gen() -> Iterator[tuple[int, Any, float]]:
        k = 0
        try:
            while True:
                ok, img = cap.read()
                if not ok:
                    return
                # Live streams carry wall-clock time; files their own clock from the frame rate.
                yield k, img, (time.time() if live else start + k / rate)
                k += 1
        finally:
            cap.release()

    return gen(), (None if live else total), rate


def frame_times(seq_dir: Path) -> dict[int, float]:
    """1-based MOT frame -> timestamp (epoch seconds) from the generator's frames.csv, if present."""
    p = seq_dir / "frames.csv"
    if not p.is_file():
        return {}
    out: dict[int, float] = {}
    with open(p, newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                frame = int(row.get("frame") or row.get("frame_index") or 0)
                ts = row.get("timestamp") or row.get("epoch") or row.get("time_s")
                out[frame] = float(ts) if ts is not None else math.nan
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{p}: bad row {row}: {exc}") from exc
    return out


def _frame_rows(seq_dir: Path) -> dict[int, dict[str, str]]:
    p = seq_dir / "frames.csv"
    if not p.is_file():
        return {}
    with open(p, newline="") as fh:
        return {int(r.get("frame") or r.get("frame_index") or 0): r for r in csv.DictReader(fh)}


# ---------------------------------------------------------------------------------------------- track
def _parse_mask(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    try:
        x0, y0, x1, y1 = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"--mask {text!r}: expected four numbers x0,y0,x1,y1 (fractions of the frame)") from None
    return (x0, y0, x1, y1)


def track_command(
    source: str = typer.Argument(..., help="Video file, RTSP/HTTP URL, USB camera index, or a MOT sequence dir."),
    out: Path = typer.Option(None, "--out", help="Write the annotated video here (mp4)."),
    tracks: Path = typer.Option(None, "--tracks", help="Write per-frame boxes, track and bird ids here (JSON)."),
    detector: Path = typer.Option(None, "--detector", help="Detector ONNX (default: shipped model)."),
    reid: Path = typer.Option(None, "--reid", help="Re-ID ONNX (default: shipped model)."),
    registry: Path = typer.Option(None, "--registry", help="Registry directory (persisted; default: in memory)."),
    farm: str = typer.Option("farm", "--farm", help="Farm id of the registry."),
    camera_id: str = typer.Option("cam0", "--camera-id"),
    imgsz: int = typer.Option(None, "--imgsz", min=32, help="Detector input size (default: the model's)."),
    conf: float = typer.Option(
        None, "--conf", min=0.0, max=1.0, help="Detector score floor (default: calibrated from the model card)."
    ),
    max_frames: int = typer.Option(None, "--max-frames", min=1),
    fps: float = typer.Option(None, "--fps", min=0.01, help="Override the source frame rate."),
    providers: str = typer.Option("cpu", "--providers", help="onnxruntime providers, comma separated."),
    mask: list[str] = typer.Option(
        [], "--mask", help="x0,y0,x1,y1 in fractions of the frame: ignore detections centred there (the DVR's "
        "clock and camera name); repeatable."
    ),
) -> None:
    """Run detect + track + identity + counting + health on a video and draw boxes, bird IDs and counts."""
    import numpy as np

    from vision.annotate import Annotator
    from vision.pipeline import FlockPipeline, PipelineConfig

    try:
        masks = [_parse_mask(m) for m in mask]
        frames, total, rate = _open_source(source, fps)
        pipe = FlockPipeline.from_defaults(
            config=PipelineConfig(masks_xyxyn=masks),
            camera_id=camera_id,
            registry_path=registry,
            farm_id=farm,
            detector_path=detector,
            reid_path=reid,
            providers=tuple(p.strip() for p in providers.split(",") if p.strip()),
            imgsz=imgsz,
            conf=conf,
        )
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    if max_frames is not None:
        total = min(total, max_frames) if total else max_frames
    annotator = Annotator()
    writer: Any = None
    records: list[dict[str, Any]] = []
    first_ts = last_ts = None
    t0 = time.perf_counter()
    n = 0
    for k, img, ts in progress(frames, total=total, description="tracking"):
        if max_frames is not None and k >= max_frames:
            break
        dets = pipe.process(img, timestamp=ts, frame_index=k)
        first_ts = ts if first_ts is None else first_ts
        last_ts = ts
        n += 1
        seen = pipe.counter.ids_seen
        if out is not None:
            import cv2

            header = f"{camera_id}  in view: {dets.extra.get('count', len(dets))}  birds verified: {seen}"
            frame = annotator.annotate(img, dets, header=header)
            if writer is None:
                out.parent.mkdir(parents=True, exist_ok=True)
                writer = cv2.VideoWriter(
                    str(out),
                    cv2.VideoWriter.fourcc(*"mp4v"),
                    rate,
                    (frame.shape[1], frame.shape[0]),
                )
                if not writer.isOpened():
                    fail(f"--out {out}: cannot open a video writer")
            writer.write(frame)
        if tracks is not None:
            assert dets.track_id is not None
            records.append(
                {
                    "frame": k,
                    "timestamp": ts,
                    "count": int(dets.extra.get("count", len(dets))),
                    "boxes": [
                        {
                            "track_id": int(dets.track_id[i]),
                            "bird_id": str(dets.bird_id[i]) if dets.bird_id is not None else "",
                            "identity_confidence": round(float(dets.identity_confidence[i]), 4)
                            if dets.identity_confidence is not None
                            else 0.0,
                            "confidence": round(float(dets.confidence[i]), 4),
                            "xyxy": [round(float(v), 2) for v in dets.xyxy[i]],
                        }
                        for i in range(len(dets))
                    ],
                    "alerts": [
                        {k2: v for k2, v in a.items() if not k2.startswith("_")} for a in dets.extra.get("alerts", [])
                    ],
                }
            )
    if writer is not None:
        writer.release()
    wall = time.perf_counter() - t0
    pipe.registry.save()
    summary: dict[str, Any] = {"frames": n, "wall_s": round(wall, 2), "fps": round(n / wall, 2) if wall else 0.0}
    if first_ts is not None and last_ts is not None:
        s = pipe.window_summary(first_ts, last_ts)
        summary.update(
            {
                "headcount": s.headcount.value,
                "headcount_low": s.headcount.low,
                "headcount_high": s.headcount.high,
                "instantaneous_max": s.headcount.instantaneous_max,
                "registered_birds": len(pipe.registry),
                "alerts": len(s.alerts),
                "activity_index": round(s.activity_index, 2),
                "huddling_index": round(s.huddling_index, 3),
            }
        )
        if tracks is not None:
            tracks.parent.mkdir(parents=True, exist_ok=True)
            tracks.write_text(
                json.dumps(
                    {
                        "source": source,
                        "camera_id": camera_id,
                        "fps": rate,
                        "summary": summary,
                        "headcount": s.headcount.as_dict(),
                        "alerts": [dict(a) for a in s.alerts],
                        "frames": records,
                    },
                    default=lambda o: o.item() if isinstance(o, np.generic) else str(o),
                )
            )
    emit(summary, as_json=False, title=f"flockid track {source}")


# ---------------------------------------------------------------------------------------------- eval count
def load_birds(seq_dir: Path) -> list[dict[str, Any]]:
    for cand in (seq_dir / "birds.json", seq_dir.parent / "birds.json"):
        if cand.is_file():
            data = json.loads(cand.read_text())
            birds = data.get("birds", data) if isinstance(data, dict) else data
            if not isinstance(birds, list):
                raise ValueError(f"{cand}: expected a list of birds (or {{'birds': [...]}})")
            return birds
    raise FileNotFoundError(f"{seq_dir}: no birds.json (looked in the sequence dir and its parent)")


def gt_by_frame(seq_dir: Path) -> dict[int, tuple[Any, Any]]:
    """1-based frame -> (xyxy float32 (N, 4), ids (N,)) of the sequence's gt.txt."""
    import numpy as np

    from datasets.formats.mot import read_gt

    gt = read_gt(seq_dir / "gt" / "gt.txt")
    order = np.argsort(gt.frame, kind="stable")
    bounds = np.flatnonzero(np.diff(gt.frame[order])) + 1
    return {
        int(gt.frame[idx[0]]): (gt.xyxy[idx].astype(np.float32), gt.track_id[idx])
        for idx in np.split(order, bounds)
        if idx.size
    }


def _build_pipeline(
    camera_id: str,
    registry: Any,
    oracle: Any,
    birds: list[dict[str, Any]],
    *,
    detector: Path | None,
    reid: Path | None,
    gt_detections: bool,
    oracle_embedder: bool,
    oracle_uniform_sim: float,
    imgsz: int | None,
    masks_xyxyn: list[tuple[float, float, float, float]] | None = None,
) -> Any:
    from vision.pipeline import (
        DetectorCalibration,
        FlockPipeline,
        PipelineConfig,
        calibrate_config,
        counting_config_from_card,
        detector_calibration_from_card,
        reid_tracker_config_from_card,
    )
    from vision.tracking import make_tracker
    from vision.weights import default_detector_path, default_reid_path

    config = PipelineConfig(masks_xyxyn=list(masks_xyxyn or []))
    if not gt_detections and not oracle_embedder:
        # The pipeline the edge builds (edge.pipelines): thresholds calibrated from both models' cards.
        return FlockPipeline.from_defaults(
            camera_id=camera_id, registry=registry, detector_path=detector, reid_path=reid, imgsz=imgsz, config=config
        )
    # An oracle replaces one stage: the real model of the other stage is still calibrated from its card.
    det_path = None if gt_detections else (detector or default_detector_path())
    reid_path = None if oracle_embedder else (reid or default_reid_path())
    calibration = (
        detector_calibration_from_card(det_path) if det_path is not None else DetectorCalibration(None, "ground truth")
    )
    config = calibrate_config(
        config,
        calibration,
        reid_tracker_config_from_card(reid_path) if reid_path is not None else None,
        counting_config_from_card(reid_path) if reid_path is not None else None,
    )
    det_stage: Any = oracle
    if det_path is not None:
        from vision.detector import OnnxDetector

        low = config.tracker_config.get("low_thresh") if config.tracker == "flockid" else None
        det_stage = OnnxDetector(det_path, conf=calibration.detector_conf(low), imgsz=imgsz)
    if oracle_embedder:
        from vision.identity.oracle import OracleEmbedder

        twins = [
            (int(b["traits"]["twin_of"]), int(b["bird_id"]))
            for b in birds
            if isinstance(b.get("traits"), dict) and b["traits"].get("twin_of")
        ]
        uniform = all(str((b.get("traits") or {}).get("breed", "")).startswith("broiler") for b in birds)
        emb: Any = OracleEmbedder(oracle, twins=twins, uniform_sim=oracle_uniform_sim if uniform else None)
    else:
        from vision.embedder import OnnxEmbedder

        emb = OnnxEmbedder(reid_path or default_reid_path())
    return FlockPipeline(
        config,
        detector=det_stage,
        embedder=emb,
        tracker=make_tracker(config.tracker, **config.tracker_kwargs()),
        registry=registry,
        camera_id=camera_id,
    )


class AlertSeen(NamedTuple):
    """One health alert of an evaluation run: `at` in seconds from the sequence start; `id_gid` the
    ground-truth bird its bird id belongs to (-1: no id, or an id never matched), `box_gid` the one its box
    showed on the alert's frame (-1: none); `named`: the alert carried a bird id."""

    kind: str
    at: float
    id_gid: int
    box_gid: int
    named: bool


def id_breakdown(
    votes: Mapping[str, Counter[int]], off_bird: Mapping[str, int], counted: Iterable[str], birds_seen: int
) -> dict[str, int]:
    """Where a verified headcount's ids come from, against the ground truth.

    votes: bird id -> ground-truth ids of its boxes; off_bird: bird id -> its boxes over no annotated bird;
    counted: the ids the headcount counted; birds_seen: distinct annotated birds. An id whose boxes mostly
    lie over no bird is `ids_on_no_bird`; the others go to the bird under most of their boxes, the first of
    a bird's ids being `birds_with_an_id` and the rest `duplicate_ids`, the over-count of a weak re-ID."""
    ids = set(counted)
    ids_per_bird: Counter[int] = Counter()
    on_nothing = 0
    for bid in ids:
        named = votes.get(bid, Counter())
        if not named or named.total() < off_bird.get(bid, 0):
            on_nothing += 1
        else:
            ids_per_bird[named.most_common(1)[0][0]] += 1
    return {
        "counted_ids": len(ids),
        "birds_with_an_id": len(ids_per_bird),
        "duplicate_ids": ids_per_bird.total() - len(ids_per_bird),
        "ids_on_no_bird": on_nothing,
        "birds_without_an_id": max(0, birds_seen - len(ids_per_bird)),
    }


def judge_health_alerts(
    alerts: list[AlertSeen], dead: dict[int, float], unwell: dict[int, float]
) -> tuple[dict[int, float], int, int]:
    """(first suspected_dead time per dead gt bird, false alerts, misnamed dead alerts).

    dead: gt id -> death time; unwell: gt id -> when it fell sick (or died). An alert is about the bird
    of its id and the bird of its box (the id first: the box may be a live bird standing over a
    carcass). A suspected_dead alert about a bird dead by then finds that carcass (misnamed when its id
    belongs to another bird); an alert about a bird neither sick by then nor dying in the sequence is
    false."""
    first_alert: dict[int, float] = {}
    false_alerts = misnamed = 0
    for a in alerts:
        about = [g for g in (a.id_gid, a.box_gid) if g >= 0]
        found = [g for g in about if g in dead and a.at >= dead[g] - 1e-6]
        if a.kind == "suspected_dead" and found:
            first_alert.setdefault(found[0], a.at)
            misnamed += int(a.named and found[0] != a.id_gid)
        elif not any(g in dead or (g in unwell and a.at >= unwell[g]) for g in about):
            false_alerts += 1
    return first_alert, false_alerts, misnamed


def evaluate_count_farm(
    seq_dirs: list[Path],
    *,
    detector: Path | None = None,
    reid: Path | None = None,
    gt_detections: bool = False,
    max_frames: int | None = None,
    imgsz: int | None = None,
    show_progress: bool = True,
    oracle_embedder: bool = False,
    oracle_uniform_sim: float = 0.8,
    masks_xyxyn: list[tuple[float, float, float, float]] | None = None,
) -> dict[str, Any]:
    """Run the pipeline over the sequences of one farm (one per camera, frames in lockstep, one shared
    registry) and compare with birds.json / gt. masks_xyxyn: regions of every camera's frame whose
    detections are dropped (a DVR's burnt-in clock and name, as `flockid track --mask`).

    truth = birds on the farm at the end of the window (birds.json minus birds removed before it ends);
    truth_seen = distinct ground-truth ids annotated in the window. error_pct uses truth.
    Dead-bird alerts: every dead bird that is visible after its death should raise suspected_dead within
    600 s of its death. An alert is about the ground-truth bird its bird id belongs to (majority vote of
    the id's boxes) or the one its box shows on the alert's frame (IoU match): a carcass named with a
    look-alike's id is still a found carcass (counted in `dead_alerts_misnamed`), and a live bird standing
    over a carcass is still the carcass's alert only when its id says so. A suspected_* alert about a
    bird that is neither dead nor sick at that time (nor dies later in the sequence) is a false alert,
    reported per 100 bird-hours of birds in view.
    """
    import numpy as np

    from datasets.formats.mot import iter_sequence_frames, read_seqinfo
    from vision.identity import IdentityRegistry
    from vision.identity.oracle import OracleDetector
    from vision.pipeline import combine_summaries

    infos = [read_seqinfo(d) for d in seq_dirs]
    birds = load_birds(seq_dirs[0])
    meta_path = seq_dirs[0] / "birds.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    sha = None
    ident_cfg = None
    if not oracle_embedder:
        from vision.pipeline import identity_config_from_card
        from vision.weights import default_reid_path, model_sha256

        sha = model_sha256(reid or default_reid_path())
        ident_cfg = identity_config_from_card(reid or default_reid_path())
    registry = IdentityRegistry(None, "eval", ident_cfg, embedder_sha=sha)
    cams = []
    for d in seq_dirs:
        oracle = OracleDetector()
        cam_meta = json.loads((d / "birds.json").read_text()) if (d / "birds.json").is_file() else {}
        cam_id = str(cam_meta.get("camera_id") or d.name)
        pipe = _build_pipeline(
            cam_id,
            registry,
            oracle,
            birds,
            detector=detector,
            reid=reid,
            gt_detections=gt_detections,
            oracle_embedder=oracle_embedder,
            oracle_uniform_sim=oracle_uniform_sim,
            imgsz=imgsz,
            masks_xyxyn=masks_xyxyn,
        )
        cams.append((d, pipe, oracle, frame_times(d), gt_by_frame(d), iter_sequence_frames(d)))
    rate = float(infos[0]["frame_rate"])
    n_frames = min(int(i["seq_length"]) for i in infos)
    if max_frames is not None:
        n_frames = min(n_frames, max_frames)
    bird_hours = 0.0
    alerts: list[tuple[dict[str, Any], int]] = []  # (alert, gt id of the alerted box)
    gt_seen: set[int] = set()
    votes: dict[str, Counter[int]] = {}  # bird id -> ground-truth ids of its boxes
    off_bird: Counter[str] = Counter()  # bird id -> its boxes over no annotated bird
    visible_after: dict[int, float] = {}  # gt id -> last time it was annotated
    first_ts = last_ts = math.nan
    start_s = math.nan
    t0 = time.perf_counter()
    steps: Any = range(n_frames)
    if show_progress:
        steps = progress(
            steps, total=n_frames, description=seq_dirs[0].parent.name if len(seq_dirs) > 1 else seq_dirs[0].name
        )
    prev_ts: list[float | None] = [None] * len(cams)
    # Every death of the sequence (time after its start): per carcass, the frames it was in view after
    # it died and those on which a detection covered it, to tell a detector miss from a health-logic one.
    died = {
        int(b["bird_id"]): float(h["at_s"])
        for b in birds
        for h in b.get("health", [])
        if h.get("state") == "dead"
    }
    carcass_frames: dict[int, list[int]] = {g: [0, 0] for g in died}  # gt id -> [in view, detected]
    for k in steps:
        for ci, (_d, pipe, oracle, times, gt_frames, frames) in enumerate(cams):
            try:
                frame_no, img = next(frames)
            except StopIteration:
                break
            ts = times.get(frame_no, k / rate)
            if math.isnan(start_s):
                start_s = times.get(1, ts)
            g_xyxy, g_ids = gt_frames.get(frame_no, (np.zeros((0, 4), np.float32), np.zeros(0, np.int64)))
            oracle.set_frame(g_xyxy, g_ids)
            for gid in g_ids:
                gt_seen.add(int(gid))
                visible_after[int(gid)] = ts - start_s
            if prev_ts[ci] is not None:
                bird_hours += len(g_ids) * max(0.0, ts - float(prev_ts[ci] or 0.0)) / 3600.0
            prev_ts[ci] = ts
            dets = pipe.process(img, timestamp=ts, frame_index=k)
            assert dets.track_id is not None
            carcasses = [int(g) for g in g_ids if int(g) in died and ts - start_s >= died[int(g)]]
            if carcasses:
                covered = set(oracle.gt_ids_for(dets.xyxy).tolist())
                for g in carcasses:
                    carcass_frames[g][0] += 1
                    carcass_frames[g][1] += int(g in covered)
            if dets.bird_id is not None and len(dets):
                for bid, gid in zip(dets.bird_id, oracle.gt_ids_for(dets.xyxy), strict=True):
                    if bid and gid >= 0:
                        votes.setdefault(str(bid), Counter())[int(gid)] += 1
                    elif bid:
                        off_bird[str(bid)] += 1
            for a in dets.extra.get("alerts", []):
                tid = int(str(a.get("_track", "track--1")).rsplit("-", 1)[-1])
                rows = np.flatnonzero(dets.track_id == tid)
                gid = int(oracle.gt_ids_for(dets.xyxy[rows])[0]) if rows.size else -1
                alerts.append((a, gid))
            first_ts = ts if math.isnan(first_ts) else min(first_ts, ts)
            last_ts = ts if math.isnan(last_ts) else max(last_ts, ts)
    wall = time.perf_counter() - t0
    summary = combine_summaries([c[1].window_summary(first_ts, last_ts) for c in cams])
    t_end_rel = last_ts - start_s
    truth = sum(1 for b in birds if b.get("removed_at_s") is None or float(b["removed_at_s"]) > t_end_rel)
    hc = summary.headcount
    dead: dict[int, float] = {}
    unwell: dict[int, float] = {}  # gt id -> when it fell sick (or died)
    for b in birds:
        for h in b.get("health", []):
            if h.get("state") in ("sick", "dead") and float(h["at_s"]) <= t_end_rel:
                unwell.setdefault(int(b["bird_id"]), float(h["at_s"]))
            if h.get("state") == "dead" and float(h["at_s"]) <= t_end_rel:
                dead[int(b["bird_id"])] = float(h["at_s"])
                break
    judged_alerts = []
    for a, box_gid in alerts:
        bid = a.get("bird_id")
        id_gid = votes[bid].most_common(1)[0][0] if bid and bid in votes else -1
        judged_alerts.append(AlertSeen(str(a["kind"]), float(a["at"]) - start_s, id_gid, box_gid, bool(bid)))
    first_alert, false_alerts, misnamed = judge_health_alerts(judged_alerts, dead, unwell)
    # Only dead birds seen for at least 10 minutes after death can be held to the 10-minute target.
    judged = [g for g in dead if visible_after.get(g, -1.0) >= dead[g] + 600.0]
    in_time = [g for g in judged if g in first_alert and first_alert[g] - dead[g] <= 600.0]
    latencies = [first_alert[g] - dead[g] for g in judged if g in first_alert]
    # Carcasses the detector found on at least half the frames they were in view after death: what is
    # left to the tracker and the health rules once detection did its part.
    found = [g for g in judged if carcass_frames[g][1] >= 0.5 * max(1, carcass_frames[g][0])]
    dead_detail = [
        {
            "gt_id": g,
            "died_at_s": round(dead[g], 1),
            "judged": g in judged,
            "frames_in_view_after": carcass_frames[g][0],
            "detected_fraction": (
                round(carcass_frames[g][1] / carcass_frames[g][0], 3) if carcass_frames[g][0] else None
            ),
            "alert_latency_s": round(first_alert[g] - dead[g], 1) if g in first_alert else None,
        }
        for g in sorted(dead)
    ]
    return {
        "sequence": seq_dirs[0].parent.name if len(seq_dirs) > 1 else seq_dirs[0].name,
        "flock": meta.get("flock", ""),
        "cameras": len(cams),
        "frames": n_frames,
        "simulated_s": round(t_end_rel, 1),
        "truth": truth,
        "truth_seen": len(gt_seen),
        "value": hc.value,
        "low": hc.low,
        "high": hc.high,
        "instantaneous_max": hc.instantaneous_max,
        "headcount_detail": hc.as_dict(),
        "id_detail": id_breakdown(votes, off_bird, hc.bird_ids, len(gt_seen)),
        "error": hc.value - truth,
        "error_pct": round(100.0 * abs(hc.value - truth) / max(1, truth), 2),
        "in_band": bool(hc.low <= truth <= hc.high),
        "registered": len(registry),
        "dead_birds": len(dead),
        "dead_judged": len(judged),
        "dead_alerted_10min": len(in_time),
        "dead_judged_detected": len(found),
        "dead_detected_alerted_10min": len([g for g in found if g in in_time]),
        "dead_alert_latency_s_max": round(max(latencies), 1) if latencies else None,
        "dead_alerts_misnamed": misnamed,
        "false_alerts": false_alerts,
        "bird_hours": round(bird_hours, 2),
        "false_alerts_per_100_bird_h": round(100.0 * false_alerts / bird_hours, 3) if bird_hours > 0 else None,
        "fps": round(n_frames * len(cams) / wall, 2) if wall > 0 else 0.0,
        "dead_detail": dead_detail,
    }


def _farms(seq_dirs: list[Path]) -> list[list[Path]]:
    """Group sequence dirs into farms: cameras written by one world share a parent dir and birds.json seed."""
    groups: dict[tuple[str, str], list[Path]] = {}
    order: list[tuple[str, str]] = []
    for d in seq_dirs:
        key = (str(d), "")
        meta_p = d / "birds.json"
        if meta_p.is_file():
            meta = json.loads(meta_p.read_text())
            if isinstance(meta, dict) and meta.get("camera_id") and d.name == meta.get("camera_id"):
                key = (str(d.parent), str(meta.get("seed")))
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(d)
    return [sorted(groups[k]) for k in order]


def count_command(
    seq_dirs: list[Path] = typer.Argument(..., help="MOT sequence dirs (seqinfo.ini, gt/gt.txt, birds.json)."),
    detector: Path = typer.Option(None, "--detector", help="Detector ONNX (default: shipped model)."),
    reid: Path = typer.Option(None, "--reid", help="Re-ID ONNX (default: shipped model)."),
    gt_detections: bool = typer.Option(
        False, "--gt-detections", help="Use ground-truth boxes instead of the detector (isolates counting)."
    ),
    oracle_embedder: bool = typer.Option(
        False,
        "--oracle-embedder",
        help="Ground-truth identity vectors with modelled look-alikes instead of "
        "the re-ID model (measures counting logic, not re-ID quality).",
    ),
    imgsz: int = typer.Option(None, "--imgsz", min=32),
    max_frames: int = typer.Option(None, "--max-frames", min=1),
    mask: list[str] = typer.Option(
        [], "--mask", help="x0,y0,x1,y1 in fractions of the frame: ignore detections centred there in every "
        "sequence (the DVR's clock and camera name); repeatable."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Verified-headcount error (and dead-bird alerts) of the pipeline on sequences with birds.json."""
    rows: list[dict[str, Any]] = []
    for seq in seq_dirs:
        if not (seq / "seqinfo.ini").is_file():
            fail(f"{seq}: not a MOT sequence dir (no seqinfo.ini)")
    try:
        masks = [_parse_mask(m) for m in mask]
    except ValueError as exc:
        fail(str(exc))
    for farm in _farms(list(seq_dirs)):
        try:
            rows.append(
                evaluate_count_farm(
                    farm,
                    detector=detector,
                    reid=reid,
                    gt_detections=gt_detections,
                    max_frames=max_frames,
                    imgsz=imgsz,
                    oracle_embedder=oracle_embedder,
                    masks_xyxyn=masks,
                )
            )
        except (ValueError, FileNotFoundError) as exc:
            fail(str(exc))
    errs = [r["error_pct"] for r in rows]
    bird_h = sum(r["bird_hours"] for r in rows)
    dead = sum(r["dead_birds"] for r in rows)
    result: dict[str, Any] = {
        "sequences": len(rows),
        "mean_abs_error_pct": round(sum(errs) / len(errs), 3) if errs else None,
        "max_abs_error_pct": max(errs) if errs else None,
        "in_band": sum(1 for r in rows if r["in_band"]),
        **{
            f"mean_abs_error_pct_{kind}": round(sum(v) / len(v), 3)
            for kind in ("mixed", "uniform")
            if (v := [r["error_pct"] for r in rows if r["flock"] == kind])
        },
        "dead_birds": dead,
        "dead_judged": sum(r["dead_judged"] for r in rows),
        "dead_alerted_10min": sum(r["dead_alerted_10min"] for r in rows),
        "dead_judged_detected": sum(r["dead_judged_detected"] for r in rows),
        "dead_detected_alerted_10min": sum(r["dead_detected_alerted_10min"] for r in rows),
        "dead_alerts_misnamed": sum(r["dead_alerts_misnamed"] for r in rows),
        "false_alerts_per_100_bird_h": round(100.0 * sum(r["false_alerts"] for r in rows) / bird_h, 3)
        if bird_h > 0
        else None,
        "detections": "ground truth" if gt_detections else "detector",
        "embedder": "oracle" if oracle_embedder else "re-ID model",
        "id_detail": {k: sum(r["id_detail"][k] for r in rows) for k in (rows[0]["id_detail"] if rows else {})},
        "rows": rows,
    }
    emit(result, as_json=json_out, title="verified headcount", rows_key="rows", measured=True)


def register_eval(eval_app: typer.Typer) -> None:
    """Add `flockid eval count`."""
    eval_app.command("count", help="Verified-headcount error of the pipeline against birds.json.")(count_command)


def register_bench(bench_app: typer.Typer) -> None:
    """`flockid bench pipeline` lives in training/cli.py (it times the detector alone vs this pipeline)."""
