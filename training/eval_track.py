"""`flockid eval track`: tracking quality on MOTChallenge sequences, scored by the official HOTA code
(`trackeval`).

Every frame is detected ONCE with the ONNX detector (through `vision.detector.OnnxDetector`); the
same detections feed every tracker asked for: `flockid` (the edge pipeline: tracker + embedder +
registry + counting) and ultralytics' `bytetrack` / `botsort` for comparison.

Reported per tracker (all sequences combined, and per sequence): HOTA, DetA, AssA, IDF1, MOTA, ID
switches, ID switches per bird-hour (bird-hours = sum over frames of ground-truth birds x frame
step, on the sequence's simulated clock from frames.csv when present), and headcount errors:
`count_mae` (mean |boxes output - birds annotated| per frame) and `headcount_abs_error`
(|estimated flock size - distinct birds in the ground truth|; flockid uses its verified headcount,
the others the number of distinct track IDs).
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TRACKERS = ("flockid", "bytetrack", "botsort")
DETECT_CONF = 0.1  # low floor: the trackers' second association stage uses 0.1..0.25 boxes


@dataclass
class _Seq:
    name: str
    path: Path
    length: int
    fps: float
    times: np.ndarray  # (length,) seconds of each frame on the sequence's clock
    gt_rows: np.ndarray  # (K, 6+) parsed gt: frame, id, x, y, w, h, conf, class, vis


@dataclass
class _Output:
    rows: list[list[float]] = field(default_factory=list)  # MOT rows
    boxes_per_frame: list[int] = field(default_factory=list)
    headcount: float | None = None


def _load_seq(seq_dir: Path, max_frames: int | None) -> _Seq:
    from datasets.formats.mot import read_seqinfo
    from datasets.synth.sequence import read_frames_csv

    seq_dir = Path(seq_dir)
    gt_file = seq_dir / "gt" / "gt.txt"
    if not gt_file.is_file():
        raise FileNotFoundError(f"{seq_dir}: not a MOT sequence with ground truth (missing {gt_file})")
    info = read_seqinfo(seq_dir) if (seq_dir / "seqinfo.ini").is_file() else {}
    fps = float(info.get("frame_rate") or 10.0)
    length = int(info.get("seq_length") or 0)
    gt = np.loadtxt(gt_file, delimiter=",", ndmin=2)
    if not length:
        length = int(gt[:, 0].max()) if len(gt) else 0
    if max_frames is not None:
        length = min(length, max_frames)
    gt = gt[gt[:, 0] <= length]
    frames = read_frames_csv(seq_dir)
    if frames is not None and len(frames["time_s"]) >= length:
        times = np.asarray(frames["time_s"][:length], np.float64)
    else:
        times = np.arange(length) / fps
    return _Seq(seq_dir.name, seq_dir, length, fps, times, gt)


class _Boxes:
    """The numpy view of detections ultralytics' trackers read (conf, cls, xywh, xyxy, bool indexing)."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> None:
        self.xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
        self.conf = np.asarray(conf, np.float32).reshape(-1)
        self.cls = np.asarray(cls, np.float32).reshape(-1)
        wh = self.xyxy[:, 2:] - self.xyxy[:, :2]
        self.xywh = np.concatenate([self.xyxy[:, :2] + wh / 2, wh], 1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, idx: Any) -> _Boxes:
        return _Boxes(self.xyxy[idx], self.conf[idx], self.cls[idx])


def _ultralytics_tracker(name: str, fps: float) -> Any:
    from training.offline import import_ultralytics

    import_ultralytics()
    from ultralytics.trackers.bot_sort import BOTSORT
    from ultralytics.trackers.byte_tracker import BYTETracker
    from ultralytics.utils import YAML, IterableSimpleNamespace
    from ultralytics.utils.checks import check_yaml

    args = IterableSimpleNamespace(**YAML.load(check_yaml(f"{name}.yaml")))
    if name == "botsort":
        args.with_reid = False  # no ultralytics re-ID weights offline; BoT-SORT = ByteTrack + camera motion
        return BOTSORT(args)
    return BYTETracker(args)


def _mot_rows(frame: int, xyxy: np.ndarray, ids: np.ndarray, conf: np.ndarray) -> list[list[float]]:
    out = []
    for (x1, y1, x2, y2), tid, c in zip(xyxy, ids, conf, strict=True):
        out.append([frame, int(tid), float(x1), float(y1), float(x2 - x1), float(y2 - y1), float(c), 1, -1, -1])
    return out


def _run(seq: _Seq, detector: Any, reid: Path | None, trackers: list[str], detector_path: Path,
         on_frame: Any) -> dict[str, _Output]:
    from datasets.formats.mot import iter_sequence_frames
    from vision.pipeline import FlockPipeline

    outs = {t: _Output() for t in trackers}
    ul = {t: _ultralytics_tracker(t, seq.fps) for t in trackers if t != "flockid"}
    pipe = None
    if "flockid" in trackers:
        pipe = FlockPipeline.from_defaults(detector_path=detector_path, reid_path=reid, camera_id=seq.name)
    for frame_no, img in iter_sequence_frames(seq.path):
        if frame_no > seq.length:
            break
        t = float(seq.times[frame_no - 1])
        dets = detector.detect(img, frame_index=frame_no, timestamp=t, camera_id=seq.name)
        if pipe is not None:
            res = pipe.process_detections(img, dets, timestamp=t, frame_index=frame_no)
            ids = res.track_id if res.track_id is not None else np.full(len(res), -1, np.int64)
            r = res[ids >= 0]
            outs["flockid"].rows += _mot_rows(frame_no, r.xyxy, ids[ids >= 0], r.confidence)
            outs["flockid"].boxes_per_frame.append(len(r))
        for name, trk in ul.items():
            tracked = trk.update(_Boxes(dets.xyxy, dets.confidence, dets.class_id), img)
            tracked = np.asarray(tracked).reshape(-1, 8) if len(tracked) else np.zeros((0, 8))
            outs[name].rows += _mot_rows(frame_no, tracked[:, :4], tracked[:, 4], tracked[:, 5])
            outs[name].boxes_per_frame.append(len(tracked))
        on_frame()
    if pipe is not None:
        outs["flockid"].headcount = float(pipe.window_summary(float(seq.times[0]), float(seq.times[-1]))
                                          .headcount.value)
    for name in ul:
        track_ids = {int(r[1]) for r in outs[name].rows}
        outs[name].headcount = float(len(track_ids))
    return outs


def _trackeval(seqs: list[_Seq], outs: dict[str, dict[str, _Output]], work: Path) -> dict[str, dict[str, Any]]:
    """HOTA / CLEAR / Identity per tracker and sequence (+ 'COMBINED_SEQ') from the official code."""
    import trackeval

    gt_root, tr_root = work / "gt", work / "trackers"
    for s in seqs:
        d = gt_root / s.name / "gt"
        d.mkdir(parents=True, exist_ok=True)
        np.savetxt(d / "gt.txt", s.gt_rows, delimiter=",", fmt="%.4f")
        (gt_root / s.name / "seqinfo.ini").write_text(
            f"[Sequence]\nname={s.name}\nseqLength={s.length}\nframeRate={s.fps}\n")
    trackers = sorted({t for per in outs.values() for t in per})
    for t in trackers:
        d = tr_root / t / "data"
        d.mkdir(parents=True, exist_ok=True)
        for s in seqs:
            rows = np.asarray(outs[s.name][t].rows, np.float64).reshape(-1, 10)
            np.savetxt(d / f"{s.name}.txt", rows, delimiter=",", fmt="%.4f")
    eval_cfg = {**trackeval.Evaluator.get_default_eval_config(), "PRINT_RESULTS": False, "PRINT_CONFIG": False,
                "TIME_PROGRESS": False, "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False, "PLOT_CURVES": False,
                "DISPLAY_LESS_PROGRESS": True, "LOG_ON_ERROR": None}
    ds_cfg = {**trackeval.datasets.MotChallenge2DBox.get_default_dataset_config(),
              "GT_FOLDER": str(gt_root), "TRACKERS_FOLDER": str(tr_root), "SKIP_SPLIT_FOL": True,
              "SEQ_INFO": {s.name: s.length for s in seqs}, "TRACKERS_TO_EVAL": trackers,
              "DO_PREPROC": False, "PRINT_CONFIG": False, "CLASSES_TO_EVAL": ["pedestrian"],
              "OUTPUT_FOLDER": str(work / "out")}
    metrics = [trackeval.metrics.HOTA({"PRINT_CONFIG": False}), trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
               trackeval.metrics.Identity({"PRINT_CONFIG": False})]
    with contextlib.redirect_stdout(sys.stderr):  # trackeval prints progress; keep --json stdout clean
        res, msgs = trackeval.Evaluator(eval_cfg).evaluate([trackeval.datasets.MotChallenge2DBox(ds_cfg)], metrics)
    per_tracker = res["MotChallenge2DBox"]
    out: dict[str, dict[str, Any]] = {}
    for t in trackers:
        if t not in per_tracker:
            raise RuntimeError(f"trackeval failed for tracker {t}: {msgs}")
        out[t] = {}
        for seq_name, cls_res in per_tracker[t].items():
            r = cls_res["pedestrian"]
            out[t][seq_name] = {
                "HOTA": float(np.mean(r["HOTA"]["HOTA"])),
                "DetA": float(np.mean(r["HOTA"]["DetA"])),
                "AssA": float(np.mean(r["HOTA"]["AssA"])),
                "IDF1": float(r["Identity"]["IDF1"]),
                "MOTA": float(r["CLEAR"]["MOTA"]),
                "id_switches": int(r["CLEAR"]["IDSW"]),
            }
    return out


def evaluate_tracking(seq_dirs: list[Path], *, detector: Path, reid: Path | None, trackers: list[str],
                      max_frames: int | None = None, on_frame: Any = None) -> dict[str, Any]:
    from vision.detector import OnnxDetector

    bad = [t for t in trackers if t not in TRACKERS]
    if bad:
        raise ValueError(f"unknown tracker(s) {bad}; valid: {list(TRACKERS)}")
    if not seq_dirs:
        raise ValueError("give at least one MOT sequence folder")
    seqs = [_load_seq(Path(s), max_frames) for s in seq_dirs]
    names = [s.name for s in seqs]
    if len(set(names)) != len(names):
        raise ValueError(f"sequence folder names must be unique, got {names}")
    det = OnnxDetector(detector, conf=DETECT_CONF)
    tick = on_frame or (lambda: None)
    outs = {s.name: _run(s, det, reid, trackers, Path(detector), tick) for s in seqs}
    with tempfile.TemporaryDirectory(prefix="flockid-trackeval-") as tmp:
        scores = _trackeval(seqs, outs, Path(tmp))
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {"detector": str(detector), "reid": str(reid) if reid else None,
                               "sequences": names, "frames": int(sum(s.length for s in seqs))}
    for t in trackers:
        total_sw, total_bh, abs_err, count_err = 0, 0.0, [], []
        for s in seqs:
            sc = scores[t][s.name]
            n_gt = np.bincount(s.gt_rows[:, 0].astype(np.int64), minlength=s.length + 1)[1 : s.length + 1]
            step = np.diff(s.times, append=s.times[-1] + (1.0 / s.fps)) if s.length else np.zeros(0)
            bird_hours = float(np.sum(n_gt * step) / 3600.0)
            o = outs[s.name][t]
            true_birds = len(np.unique(s.gt_rows[:, 1])) if len(s.gt_rows) else 0
            head_err = abs((o.headcount or 0.0) - true_birds)
            cmae = float(np.mean(np.abs(np.asarray(o.boxes_per_frame) - n_gt[: len(o.boxes_per_frame)])))
            rows.append({"tracker": t, "sequence": s.name, **sc, "bird_hours": bird_hours,
                         "id_switches_per_bird_hour": sc["id_switches"] / bird_hours if bird_hours else None,
                         "count_mae": cmae, "headcount": o.headcount, "true_birds": true_birds,
                         "headcount_abs_error": head_err})
            total_sw += sc["id_switches"]
            total_bh += bird_hours
            abs_err.append(head_err)
            count_err.append(cmae)
        comb = scores[t]["COMBINED_SEQ"]
        summary[t] = {**comb, "id_switches_per_bird_hour": total_sw / total_bh if total_bh else None,
                      "bird_hours": total_bh, "count_mae": float(np.mean(count_err)),
                      "headcount_abs_error": float(np.mean(abs_err))}
    summary["rows"] = rows
    return summary
