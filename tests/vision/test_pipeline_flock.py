"""FlockPipeline end to end with oracle stages on a toy world (fast), and with tiny ONNX models via the CLI."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from onnx_fixtures import make_constant_yolo, make_mean_colour_embedder

from vision.identity import IdentityRegistry
from vision.identity.oracle import OracleDetector, OracleEmbedder
from vision.pipeline import FlockPipeline, PipelineConfig, combine_summaries
from vision.tracking import make_tracker

T0 = 1_772_323_200.0
FW, FH = 640, 360


def toy_world(
    n: int, frames: int, seed: int, x_range: tuple[float, float] = (-60.0, 700.0)
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Birds random-walking in a pen wider than the view (so they leave and re-enter).
    Yields (frame, xyxy of visible birds, their ids, all centres)."""
    rng = np.random.default_rng(seed)
    pos = np.column_stack([rng.uniform(*x_range, n), rng.uniform(30, FH - 30, n)])
    vel = np.zeros((n, 2))
    for f in range(frames):
        vel = 0.9 * vel + rng.normal(0, 1.0, (n, 2))
        pos = np.clip(pos + vel, [x_range[0], 30], [x_range[1], FH - 30])
        half = np.array([15.0, 10.0])
        xyxy = np.concatenate([pos - half, pos + half], 1)
        vis = (xyxy[:, 0] >= 0) & (xyxy[:, 2] <= FW)
        yield f, xyxy[vis].astype(np.float32), np.flatnonzero(vis) + 1, pos


def make_pipeline(
    registry: IdentityRegistry, camera_id: str = "cam0", seed: int = 0
) -> tuple[FlockPipeline, OracleDetector, OracleEmbedder]:
    det = OracleDetector(jitter_px=0.5, seed=seed)
    emb = OracleEmbedder(det, self_sim=0.9, seed=7)  # same seed: same identity vectors in every camera
    pipe = FlockPipeline(
        PipelineConfig(),
        detector=det,
        embedder=emb,
        tracker=make_tracker("flockid"),
        registry=registry,
        camera_id=camera_id,
    )
    return pipe, det, emb


def run(
    pipe: FlockPipeline,
    det: OracleDetector,
    world: Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]],
    id_filter: object = None,
) -> tuple[set[int], int]:
    frame = np.zeros((FH, FW, 3), np.uint8)
    seen: set[int] = set()
    boxes = 0
    for f, xyxy, ids, _ in world:
        if callable(id_filter):
            keep = id_filter(ids)
            xyxy, ids = xyxy[keep], ids[keep]
        det.set_frame(xyxy, ids)
        out = pipe.process(frame, timestamp=T0 + f / 10, frame_index=f)
        assert out.bird_id is not None and out.identity_confidence is not None
        assert out.extra["count"] == len(out)
        seen.update(int(i) for i in ids)
        boxes += len(ids)
    return seen, boxes


def test_verified_headcount_counts_reentries_once_and_embeds_sparingly() -> None:
    reg = IdentityRegistry(None, "farm")
    pipe, det, emb = make_pipeline(reg)
    seen, boxes = run(pipe, det, toy_world(30, 500, seed=1))
    s = pipe.window_summary(T0, T0 + 50)
    hc = s.headcount
    assert abs(hc.value - len(seen)) <= 1, (hc.value, len(seen))
    assert hc.low <= hc.value <= hc.high
    assert hc.instantaneous_max <= len(seen) and hc.instantaneous_max > 0
    # A window cut short (an early report) still counts the birds of a full look back when asked to.
    late = pipe.window_summary(T0 + 48, T0 + 50)
    look_back = pipe.window_summary(T0 + 48, T0 + 50, headcount_from=T0)
    assert look_back.headcount.value == hc.value and late.headcount.value < hc.value
    assert look_back.birds == late.birds  # health stays the window's own
    with pytest.raises(ValueError, match="headcount_from"):
        pipe.window_summary(T0, T0 + 50, headcount_from=T0 + 1)
    # The embedder ran on a fraction of the boxes (new tracks and every embed_every-th frame).
    assert emb.calls < 0.35 * boxes
    fields = s.report_fields()
    from vision.wire import FlockReport

    report = FlockReport(
        device_id="dev",
        farm_id="farm",
        seq=0,
        device_clock=datetime.now(tz=timezone.utc),
        monotonic_s=1.0,
        window_start=datetime.fromtimestamp(T0, tz=timezone.utc),
        window_end=datetime.fromtimestamp(T0 + 50, tz=timezone.utc),
        camera_ids=["cam0"],
        frames_seen=500,
        frames_processed=s.frames_processed,
        **fields,
    )
    assert report.headcount.value == hc.value
    assert len(report.birds) == hc.value or len(report.birds) >= hc.value - 1
    assert all(b.bird_id.startswith("bird-") for b in report.birds)


def test_two_cameras_share_the_registry_and_count_a_bird_once() -> None:
    reg = IdentityRegistry(None, "farm")
    p0, d0, _ = make_pipeline(reg, "cam0", seed=0)
    p1, d1, _ = make_pipeline(reg, "cam1", seed=1)
    frame = np.zeros((FH, FW, 3), np.uint8)
    seen: set[int] = set()
    for f, xyxy, ids, _ in toy_world(24, 300, seed=2, x_range=(20.0, 620.0)):
        # cam0 sees birds 1-16, cam1 sees birds 9-24: birds 9-16 are in both views.
        for pipe, det, lo, hi in ((p0, d0, 1, 16), (p1, d1, 9, 24)):
            keep = (ids >= lo) & (ids <= hi)
            det.set_frame(xyxy[keep], ids[keep])
            pipe.process(frame, timestamp=T0 + f / 10, frame_index=f)
        seen.update(int(i) for i in ids)
    s0, s1 = p0.window_summary(T0, T0 + 30), p1.window_summary(T0, T0 + 30)
    total = combine_summaries([s0, s1])
    assert s0.headcount.value + s1.headcount.value > total.headcount.value  # the overlap is not summed
    assert abs(total.headcount.value - len(seen)) <= 1
    assert total.camera_ids == ["cam0", "cam1"]
    shared = {b.bird_id for b in total.birds if len(b.cameras) == 2}
    assert len(shared) >= 6


def test_restart_with_the_persisted_registry_keeps_ids(tmp_path: Path) -> None:
    path = tmp_path / "registry"
    reg = IdentityRegistry(path, "farm", embedder_sha="e" * 64)
    pipe, det, _ = make_pipeline(reg)
    frame = np.zeros((FH, FW, 3), np.uint8)
    world = list(toy_world(10, 200, seed=3, x_range=(40.0, 600.0)))
    votes: dict[int, Counter[str]] = {}
    for f, xyxy, ids, _ in world[:100]:
        det.set_frame(xyxy, ids)
        out = pipe.process(frame, timestamp=T0 + f / 10, frame_index=f)
        for b, g in zip(out.bird_id, det.gt_ids_for(out.xyxy), strict=True):
            if b:
                votes.setdefault(int(g), Counter())[str(b)] += 1
    first = {g: c.most_common(1)[0][0] for g, c in votes.items()}
    reg.save()

    again = IdentityRegistry(path, "farm", embedder_sha="e" * 64)
    pipe2, det2, _ = make_pipeline(again)
    agree = total = 0
    for f, xyxy, ids, _ in world[100:]:
        det2.set_frame(xyxy, ids)
        out = pipe2.process(frame, timestamp=T0 + 100 + f / 10, frame_index=f)
        for b, g in zip(out.bird_id, det2.gt_ids_for(out.xyxy), strict=True):
            if b and int(g) in first:
                total += 1
                agree += first[int(g)] == b
    assert total > 0 and agree / total > 0.9
    assert len(again) <= len(first) + 1


def test_track_command_writes_video_and_tracks_json(tmp_path: Path) -> None:
    import cv2
    from typer.testing import CliRunner

    from flockid.cli import app

    # Three static coloured "birds" and a detector that always finds them.
    centres = [(16.0, 16.0), (40.0, 20.0), (24.0, 46.0)]
    raw = np.zeros((1, 5, 3), np.float32)
    for k, (cx, cy) in enumerate(centres):
        raw[0, :, k] = [cx, cy, 12.0, 12.0, 0.9]
    det_path = make_constant_yolo(tmp_path / "det.onnx", raw, imgsz=64)
    reid_path = make_mean_colour_embedder(tmp_path / "reid.onnx")
    video = tmp_path / "in.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (64, 64))
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    for _ in range(30):
        img = np.full((64, 64, 3), 90, np.uint8)
        for (cx, cy), col in zip(centres, colours, strict=True):
            cv2.rectangle(img, (int(cx - 6), int(cy - 6)), (int(cx + 6), int(cy + 6)), col, -1)
        writer.write(img)
    writer.release()
    out, tracks = tmp_path / "out.mp4", tmp_path / "tracks.json"
    res = CliRunner().invoke(
        app,
        [
            "track",
            str(video),
            "--out",
            str(out),
            "--tracks",
            str(tracks),
            "--detector",
            str(det_path),
            "--reid",
            str(reid_path),
        ],
    )
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 0
    data = json.loads(tracks.read_text())
    assert len(data["frames"]) == 30
    last = data["frames"][-1]
    assert last["count"] == 3
    ids = {b["bird_id"] for b in last["boxes"]}
    assert len(ids) == 3 and all(i.startswith("bird-") for i in ids)
    assert data["summary"]["headcount"] == 3
    # The bird at (40, 20) of the 64x64 frame masked out (a DVR overlay would be): two birds remain.
    args = ["track", str(video), "--tracks", str(tracks), "--detector", str(det_path), "--reid", str(reid_path)]
    res = CliRunner().invoke(app, [*args, "--mask", "0.5,0.2,0.75,0.45"])
    assert res.exit_code == 0, res.output
    assert json.loads(tracks.read_text())["frames"][-1]["count"] == 2
    res = CliRunner().invoke(app, [*args, "--mask", "0.5,0.2,0.75"])
    assert res.exit_code != 0 and "--mask" in res.output


def test_track_command_fails_loudly_on_a_missing_source(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from flockid.cli import app

    res = CliRunner().invoke(app, ["track", str(tmp_path / "nope.mp4")])
    assert res.exit_code != 0
    assert "nope.mp4" in res.output


def test_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError):
        PipelineConfig(embed_evry=3)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="end_ts"):
        make_pipeline(IdentityRegistry(None, "farm"))[0].window_summary(10.0, 5.0)


def test_eval_count_on_a_synthetic_mot_sequence(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from datasets.synth import FlockWorld, WorldConfig
    from datasets.synth.sequence import write_sequence
    from flockid.cli import app

    world = FlockWorld(WorldConfig(seed=3, birds=12, frames=40, size_wh=(320, 180), camera="topdown"))
    (seq,) = write_sequence(world, tmp_path / "seq", video=False)
    res = CliRunner().invoke(app, ["eval", "count", str(seq), "--gt-detections", "--oracle-embedder", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output.strip().splitlines()[-1])
    row = data["rows"][0]
    assert row["truth"] == 12 and row["frames"] == 40
    # What produced the figures travels with them.
    assert data["environment"]["packages"]["numpy"] == np.__version__
    assert row["low"] <= row["value"] <= row["high"]
    assert 0 < row["value"] <= row["truth_seen"] + 1
    # The band's terms, to tell why a band misses the truth (fragmentation, unresolved tracks, misses).
    detail = row["headcount_detail"]
    assert (detail["value"], detail["high"]) == (row["value"], row["high"]) and detail["fragmentation"] >= 1.0
    assert data["sequences"] == 1 and data["embedder"] == "oracle"
    # --mask drops detections centred in a region of every frame: the left half holds some of the birds.
    masked = CliRunner().invoke(app, ["eval", "count", str(seq), "--gt-detections", "--oracle-embedder", "--json",
                                      "--mask", "0,0,0.5,1"])
    assert masked.exit_code == 0, masked.output
    assert json.loads(masked.output.strip().splitlines()[-1])["rows"][0]["truth_seen"] == row["truth_seen"]
    assert json.loads(masked.output.strip().splitlines()[-1])["rows"][0]["value"] < row["value"]
    bad = CliRunner().invoke(app, ["eval", "count", str(seq), "--gt-detections", "--mask", "0,0,1"])
    assert bad.exit_code != 0 and "--mask '0,0,1'" in bad.output


def test_eval_count_reports_each_carcass_in_view_and_how_often_it_was_detected(tmp_path: Path) -> None:
    """Per dead bird: frames in view after its death and the share a detection covered (here the ground-truth
    boxes themselves, so nearly all of them): a carcass the detector never finds is told apart from one the health
    rules missed."""
    from typer.testing import CliRunner

    from datasets.synth import FlockWorld, WorldConfig
    from datasets.synth.sequence import write_sequence
    from flockid.cli import app

    world = FlockWorld(WorldConfig(seed=3, birds=12, frames=40, size_wh=(320, 180), camera="topdown",
                                   dead_birds=1, dead_window_s=(0.5, 1.0), incident_camera=0))
    (seq,) = write_sequence(world, tmp_path / "seq", video=False)
    res = CliRunner().invoke(app, ["eval", "count", str(seq), "--gt-detections", "--oracle-embedder", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output.strip().splitlines()[-1])
    (detail,) = data["rows"][0]["dead_detail"]
    assert 0.5 <= detail["died_at_s"] <= 1.0
    assert 25 <= detail["frames_in_view_after"] <= 35  # 4 s of 10 fps footage, minus the first second
    assert detail["detected_fraction"] >= 0.9
    # Filmed for seconds, not the 10 minutes the alert target needs: not judged, not alerted.
    assert detail["judged"] is False and detail["alert_latency_s"] is None
    assert data["dead_judged_detected"] == data["dead_detected_alerted_10min"] == 0
    human = CliRunner().invoke(app, ["eval", "count", str(seq), "--gt-detections", "--oracle-embedder"])
    assert human.exit_code == 0 and "dead_detail" not in human.output


def test_identity_thresholds_come_from_the_reid_model_card(tmp_path: Path) -> None:
    from vision.pipeline import identity_config_from_card

    model = tmp_path / "reid.onnx"
    assert identity_config_from_card(model).match_threshold == 0.70  # no card: defaults
    (tmp_path / "reid.json").write_text(
        json.dumps({"identity": {"match_threshold": 0.8, "new_threshold": 0.6, "margin": 0.04, "other": 1}})
    )
    cfg = identity_config_from_card(model)
    assert (cfg.match_threshold, cfg.new_threshold, cfg.margin) == (0.8, 0.6, 0.04)
    (tmp_path / "reid.json").write_text(json.dumps({"identity": {"match_threshold": 0.3, "new_threshold": 0.6}}))
    with pytest.raises(ValueError, match="new_threshold"):
        identity_config_from_card(model)


def test_report_fields_convert_alerts_birds_and_signals_to_wire_models() -> None:
    from vision.counting import HeadcountEstimate
    from vision.health import BirdHealth
    from vision.pipeline import WindowSummary

    bird = BirdHealth(
        bird_id="bird-000007",
        identity_confidence=0.8,
        first_seen=T0,
        last_seen=T0 + 60,
        activity_bl_per_h=120.0,
        observed_s=60.0,
        weight_g=2100.0,
        weight_g_low=1800.0,
        weight_g_high=2400.0,
        health=["suspected_dead"],
        cameras=["cam0"],
    )
    anon = BirdHealth(
        bird_id="", identity_confidence=0.0, first_seen=T0, last_seen=T0, activity_bl_per_h=0.0, observed_s=0.0
    )
    alert = {
        "kind": "suspected_dead",
        "at": T0 + 30,
        "camera_id": "cam0",
        "bird_id": "bird-000007",
        "severity": "critical",
        "message": "motionless for 7 min",
    }
    s = WindowSummary(
        start_ts=T0,
        end_ts=T0 + 60,
        camera_ids=["cam0"],
        frames_processed=10,
        headcount=HeadcountEstimate(
            value=5, low=4, high=7, instantaneous_max=5, bird_ids=frozenset(f"bird-{i:06d}" for i in range(5))
        ),
        birds=[bird, anon],
        alerts=[alert],
        activity_index=50.0,
        huddling_index=0.3,
        mean_weight_g=2100.0,
    )
    fields = s.report_fields()
    assert fields["headcount"].high == 7
    assert [b.bird_id for b in fields["birds"]] == ["bird-000007"]  # anonymous tracks are not reported
    assert fields["alerts"][0].at == datetime.fromtimestamp(T0 + 30, tz=timezone.utc)
    assert fields["signals"].huddling_index == 0.3
    merged = combine_summaries([s, s])
    assert merged.headcount.value == 5 and len(merged.alerts) == 1  # one dead bird, one alert


def test_boxes_the_tracker_wants_are_embedded_before_update_within_the_crop_budget() -> None:
    """The tracker gets appearance for the boxes `embedding_wanted` picks in `update` itself, and the
    before- and after-tracking crops together never exceed max_embeds_per_frame."""

    class SpyTracker:
        def __init__(self) -> None:
            self.inner = make_tracker("flockid")
            self.wanted_had_embedding: list[bool] = []
            self.wanted_total = 0

        def embedding_wanted(self, dets, *, max_boxes=None):  # type: ignore[no-untyped-def]
            wanted = self.inner.embedding_wanted(dets, max_boxes=max_boxes)
            self._wanted_boxes = dets.xyxy[wanted]  # the pipeline may ask about a subset of the frame
            self.wanted_total += int(wanted.sum())
            return wanted

        def update(self, dets):  # type: ignore[no-untyped-def]
            for box in self._wanted_boxes:
                r = int(np.flatnonzero(np.all(dets.xyxy == box, axis=1))[0])
                emb = dets.embedding
                self.wanted_had_embedding.append(emb is not None and bool(np.any(emb[r] != 0)))
            self._wanted_boxes = np.zeros((0, 4), np.float32)
            return self.inner.update(dets)

        def update_appearance(self, dets):  # type: ignore[no-untyped-def]
            self.inner.update_appearance(dets)

        def removed_tracks_since_last_call(self):  # type: ignore[no-untyped-def]
            return self.inner.removed_tracks_since_last_call()

        def reset(self) -> None:
            self.inner.reset()

    class CountingEmbedder(OracleEmbedder):
        per_frame: ClassVar[list[int]] = []

        def embed(self, frame_bgr, dets, rows=None):  # type: ignore[no-untyped-def]
            self.per_frame[-1] += len(dets) if rows is None else len(np.arange(len(dets))[rows])
            return super().embed(frame_bgr, dets, rows)

    reg = IdentityRegistry(None, "farm")
    det = OracleDetector(jitter_px=0.5, seed=0)
    emb = CountingEmbedder(det, self_sim=0.9, seed=7)
    spy = SpyTracker()
    cap = 5
    pipe = FlockPipeline(
        PipelineConfig(max_embeds_per_frame=cap),
        detector=det,
        embedder=emb,
        tracker=spy,
        registry=reg,
    )
    frame = np.zeros((FH, FW, 3), np.uint8)
    for f, xyxy, ids, _ in toy_world(30, 120, seed=3):
        det.set_frame(xyxy, ids)
        emb.per_frame.append(0)
        out = pipe.process(frame, timestamp=T0 + f / 10, frame_index=f)
        assert out.bird_id is not None
    assert spy.wanted_total > 0  # new and re-entering birds were asked for
    assert spy.wanted_had_embedding and all(spy.wanted_had_embedding)
    assert max(emb.per_frame) <= cap
    assert sum(emb.per_frame) == emb.calls
    s = pipe.window_summary(T0, T0 + 12)
    assert s.headcount.value > 0


DEAD = {7: 100.0}  # gt bird 7 dies at t=100 s
UNWELL = {7: 40.0, 9: 200.0}  # 7 sick from 40 s, 9 sick from 200 s


@pytest.mark.parametrize(
    ("alert", "found", "false", "misnamed"),
    [
        (("suspected_dead", 400.0, 7, 7, True), {7: 400.0}, 0, 0),  # the carcass, under its own id
        (("suspected_dead", 400.0, 3, 7, True), {7: 400.0}, 0, 1),  # the carcass under a look-alike's id
        (("suspected_dead", 400.0, 7, 3, True), {7: 400.0}, 0, 0),  # its id; a live bird over the carcass
        (("suspected_dead", 400.0, -1, 7, False), {7: 400.0}, 0, 0),  # an anonymous box on the carcass
        (("suspected_dead", 50.0, 7, 7, True), {}, 0, 0),  # before death: early, not false (it was sick)
        (("suspected_dead", 400.0, 3, 3, True), {}, 1, 0),  # a healthy bird
        (("suspected_dead", 400.0, -1, -1, False), {}, 1, 0),  # a box on nothing at all
        (("suspected_sick", 300.0, 9, 9, True), {}, 0, 0),  # a sick bird, sick by then
        (("suspected_sick", 150.0, 9, 9, True), {}, 1, 0),  # the same bird before it fell sick
    ],
)
def test_eval_judges_health_alerts_by_id_and_by_box(
    alert: tuple[str, float, int, int, bool], found: dict[int, float], false: int, misnamed: int
) -> None:
    from vision.cli import AlertSeen, judge_health_alerts

    assert judge_health_alerts([AlertSeen(*alert)], DEAD, UNWELL) == (found, false, misnamed)


@pytest.mark.parametrize(
    ("boxes", "counted", "expected"),
    [
        # two ids on one bird: one duplicate; the bird under most of an id's boxes owns it
        ({"a": {1: 9, 2: 1}, "b": {1: 5}}, ["a", "b"], (2, 1, 1, 0, 1)),
        # an id mostly over no annotated bird (an occluded bird's part box, a feeder)
        ({"a": {1: 9}, "b": {-1: 6, 2: 4}}, ["a", "b"], (2, 1, 0, 1, 1)),
        # only counted ids are judged; a bird nobody named is missed
        ({"a": {1: 9}, "b": {2: 9}}, ["a"], (1, 1, 0, 0, 1)),
        # as many boxes over no bird as over its bird: still that bird's
        ({"a": {1: 5, -1: 5}}, ["a"], (1, 1, 0, 0, 1)),
        # a counted id the evaluation never matched to any box
        ({}, ["a"], (1, 0, 0, 1, 2)),
    ],
)
def test_eval_traces_each_counted_id_to_a_bird(
    boxes: dict[str, dict[int, int]], counted: list[str], expected: tuple[int, int, int, int, int]
) -> None:
    from collections import Counter

    from vision.cli import id_breakdown

    votes = {k: Counter({g: n for g, n in v.items() if g >= 0}) for k, v in boxes.items()}
    off_bird = {k: v.get(-1, 0) for k, v in boxes.items()}
    out = id_breakdown(votes, off_bird, counted, birds_seen=2)
    keys = ("counted_ids", "birds_with_an_id", "duplicate_ids", "ids_on_no_bird", "birds_without_an_id")
    assert tuple(out[k] for k in keys) == expected


def test_masked_regions_drop_detections_before_tracking() -> None:
    """A DVR's burnt-in camera name that the detector takes for a bird: it never moves, so unmasked it
    is tracked (and health would call it dead); masked (bottom-right corner) it never reaches the tracker."""
    overlay = np.array([[580.0, 335.0, 630.0, 355.0]], np.float32)  # centre (605, 345)
    for masks, tracked in (([], True), ([(0.9, 0.9, 1.0, 1.0)], False)):
        det = OracleDetector(jitter_px=0.0, seed=0)
        pipe = FlockPipeline(PipelineConfig(masks_xyxyn=masks), detector=det,
                             embedder=OracleEmbedder(det, self_sim=0.9, seed=7), tracker=make_tracker("flockid"),
                             registry=IdentityRegistry(None, "farm"), camera_id="cam0")
        frame = np.zeros((FH, FW, 3), np.uint8)
        bird = np.array([[100.0, 100.0, 130.0, 120.0]], np.float32)
        for f in range(20):
            det.set_frame(np.concatenate([bird + f, overlay]), np.array([1, 99]))
            out = pipe.process(frame, timestamp=T0 + f, frame_index=f)
        boxes = [tuple(b) for b in out.xyxy.round(0).tolist()]
        assert ((580.0, 335.0, 630.0, 355.0) in boxes) is tracked
        assert len(out) == (2 if tracked else 1)


def test_masks_must_be_fractions_of_the_frame() -> None:
    with pytest.raises(ValueError, match="fractions of the frame"):
        PipelineConfig(masks_xyxyn=[(0.5, 0.5, 1.2, 1.0)])


def test_detector_spin_is_a_pipeline_setting() -> None:
    """The edge keeps onnxruntime's idle detector threads asleep (CPU before wall time) unless asked."""
    from vision.pipeline import FlockPipeline, PipelineConfig

    def spinning(pipe: FlockPipeline) -> bool:
        opts = pipe.detector.session.get_session_options()  # type: ignore[attr-defined]
        try:
            return str(opts.get_session_config_entry("session.intra_op.allow_spinning")) != "0"
        except Exception:  # onnxruntime raises when the entry was never set: its default, spinning
            return True

    assert not spinning(FlockPipeline.from_defaults())
    assert spinning(FlockPipeline.from_defaults(config=PipelineConfig(detector_spin=True)))
