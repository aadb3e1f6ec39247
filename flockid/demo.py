"""`flockid demo`: the end-to-end demo on embedded defaults.

A synthetic two-camera farm is filmed over several simulated days (growth, a death, a sick bird,
birds leaving and returning), the real edge runtime processes the footage with the shipped ONNX
models and uploads signed, hash-chained reports to the real lender API (SQLite, served on
localhost), and the lender's view of it is printed, charted and left browsable on the dashboard.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import typer

LENDER = "Demo Bank"
FARM = "Sunrise Poultry"
PRICE_PER_KG = 1.9
LTV_LIMIT = 0.8
CLIP_SCALE = 2


def demo_command(
    out: Path = typer.Option(Path("out/demo"), "--out", help="folder for the video, charts and database"),
    days: int = typer.Option(4, "--days", min=1, max=14, help="simulated days of footage"),
    seed: int = typer.Option(7, "--seed", min=0, help="seed of the synthetic farm"),
    port: int = typer.Option(0, "--port", min=0, max=65535, help="API port on 127.0.0.1 (0 = any free port)"),
    keep_running: bool = typer.Option(False, "--keep-running", help="leave the API up for the dashboard"),
    detector: str = typer.Option("models", "--detector",
                                 help="'models': the shipped ONNX models; 'ground-truth': the synthetic "
                                      "world's boxes and identities (no models needed)"),
) -> None:
    """Run the end-to-end demo: farm video -> edge -> signed reports -> lender API -> summary."""
    from flockid.console import fail

    if detector not in ("models", "ground-truth"):
        fail(f"--detector must be 'models' or 'ground-truth', got {detector!r}")
    out = out.resolve()
    if out.exists() and any(p for p in out.iterdir() if p.name != ".work"):
        # A re-run replaces the previous demo's outputs; anything else in the folder is not ours.
        ours = {"annotated.mp4", "annotated.avi", "headcount.png", "weight.png", "valuation.png", "summary.json",
                "flockid.db", "dashboard.txt"}
        foreign = sorted(p.name for p in out.iterdir() if p.name not in ours and p.name != ".work")
        if foreign:
            fail(f"--out {out} holds files the demo did not write ({', '.join(foreign[:5])}); pick an empty folder")
    try:
        run_demo(out, days=days, seed=seed, port=port, keep_running=keep_running, detector=detector)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _stage(message: str) -> None:
    from flockid.console import stderr

    stderr.print(f"[bold green]▶[/] {message}")


def footage_end(now: datetime) -> datetime:
    """The last UTC midnight at or before `now`: the demo's footage ends there. Reports are recent but
    never future-dated (the API refuses those), and the footage's hours of day (light, night, feeding)
    are the same whenever the demo runs, so a seed always gives the same figures (aligned to the 6-hour
    report window instead, the same seed gave 33 or 35 birds depending on the hour it was run)."""
    day = 86400.0
    return datetime.fromtimestamp((now.timestamp() // day) * day, timezone.utc)


def run_demo(out: Path, *, days: int, seed: int, port: int, keep_running: bool, detector: str) -> dict[str, Any]:
    import shutil
    import time
    from datetime import timedelta

    from datasets.synth import HealthEvent
    from flockid.console import progress
    from flockid.demo_edge import GROUND_TRUTH, SHIPPED_MODELS, EdgeDevice, burst_options
    from flockid.demo_stack import LocalApi
    from flockid.demo_truth import truth_check
    from flockid.demo_world import BurstPlan, farm_world, fit_px_per_cm, record_farm

    t_start = time.monotonic()
    factory = SHIPPED_MODELS
    if detector == "models":
        try:
            from vision.weights import default_detector_path, default_reid_path

            default_detector_path()
            default_reid_path()
        except FileNotFoundError as exc:
            from flockid.console import fail

            fail(f"{exc}\nRun with --detector ground-truth to see the rest of the system without models.")
    else:
        factory = GROUND_TRUTH
    out.mkdir(parents=True, exist_ok=True)
    work = out / ".work"
    shutil.rmtree(work, ignore_errors=True)
    for stale in ("flockid.db", "flockid.db-wal", "flockid.db-shm"):
        (out / stale).unlink(missing_ok=True)

    plan = BurstPlan(days=float(days))
    end = footage_end(datetime.now(timezone.utc))
    epoch0 = (end - timedelta(days=days)).timestamp()
    times = plan.times_s()
    n_birds = 24
    day = 86400.0
    events = [HealthEvent(bird=5, state="sick", at_s=0.4 * day),
              HealthEvent(bird=11, state="dead", at_s=min(1.3, 0.45 * days) * day)]
    world = farm_world(times, epoch0, seed=seed, birds=n_birds, health_events=events)

    _stage(f"filming a synthetic farm: {n_birds} birds, {len(world.cameras)} cameras, {days} simulated days "
           f"({len(times)} instants in bursts)")
    bar = iter(progress(range(len(times) * len(world.cameras)), description="filming"))
    recordings = record_farm(world, times, work / "footage", on_frame=lambda _f: next(bar, None))
    for _ in bar:
        pass
    # Set-up day: the farmer weighs a few birds in view of each camera; with the shipped models their
    # lengths are measured on the detector's own boxes, as the edge will measure them.
    measure = None
    if factory == SHIPPED_MODELS:
        from vision.detector import OnnxDetector
        from vision.weights import default_detector_path

        measure = OnnxDetector(default_detector_path())
    calibration = {r.camera_id: {"px_per_cm": round(fit_px_per_cm(r, detector=measure), 4)} for r in recordings}

    _stage("starting the lender API (SQLite) and enrolling a lender, farm, flock, loan and edge device")
    api = LocalApi(work / "api", port=port, database_url=f"sqlite:///{out / 'flockid.db'}").start()
    try:
        placed = datetime.fromtimestamp(epoch0, timezone.utc) - timedelta(days=28)
        # A loan of 60% of the flock's value at the start (true weights of the synthetic birds).
        start_weight_kg = sum(b.weight_g(world.config.start_day) for b in world.birds) / n_birds / 1000.0
        expected_value = n_birds * start_weight_kg * PRICE_PER_KG
        tenant = api.enrol_tenant(lender=LENDER, farm=FARM, placed_at=placed, placed_count=n_birds,
                                  principal=round(0.6 * expected_value, 2), price_per_kg=PRICE_PER_KG,
                                  ltv_limit=LTV_LIMIT, location=f"synthetic farm, seed {seed}")
        device = EdgeDevice(work / "edge", "demo-edge-1", tenant.farm_id, factory=factory,
                            options=burst_options(plan.window_s, plan.burst_every_s, appearance_seed=seed,
                                                  burst_frames=plan.frames),
                            window_s=plan.window_s, calibration=calibration)
        device.connect(api.url, api.enrol_device(tenant, device.device_id, device.public_key_pem))

        _stage(f"edge pipeline ({'shipped ONNX models' if factory == SHIPPED_MODELS else 'ground truth'}): "
               "signed, hash-chained reports uploaded after every window")
        clip = _Clip(recordings[0].camera_id)
        total = sum(r.frames for r in recordings)
        ebar = iter(progress(range(total), description="edge"))

        boxes = [0]

        def on_frame(camera_id: str, image: Any, dets: Any, ts: float) -> None:
            next(ebar, None)
            boxes[0] += len(dets)
            clip.add(camera_id, image, dets, ts)

        stats = device.run(recordings, on_frame=on_frame)
        for _ in ebar:
            pass
        if stats.backlog:
            raise RuntimeError(f"the edge could not upload {stats.backlog} reports; see the log above")

        if boxes[0] == 0:
            from flockid.console import stderr

            stderr.print(f"[bold yellow]warning:[/] the detector found no birds in {total} frames; the figures "
                         "below are empty. Check the shipped models (vision/weights) or run with "
                         "--detector ground-truth to see the rest of the system.")
        _stage("lender's view")
        summary = lender_summary(api, tenant, stats)
        series = hourly_series(api, tenant)
        summary["truth_check"] = truth_check(
            series[0], placed=n_birds, deaths_ts=[epoch0 + e.at_s for e in events if e.state == "dead"])
        video = clip.write(out)
        charts = write_charts(api, tenant, out, series)
        summary["outputs"] = {"video": str(video) if video else None, **{k: str(v) for k, v in charts.items()}}
        summary["wall_time_s"] = round(time.monotonic() - t_start, 1)
        # The figures depend on the seed, on the footage's dates (the burnt-in clock prints them; see the
        # README) and on the packages underneath: all three travel with them.
        from flockid.provenance import environment

        summary["footage"] = {"seed": seed, "days": days, "end": end.isoformat()}
        summary["environment"] = environment()
        dashboard = f"{api.url}/dashboard"
        summary["dashboard"] = {"url": dashboard, "lender_api_key": tenant.lender_key}
        _write_json(out / "summary.json", summary)
        (out / "dashboard.txt").write_text(f"{dashboard}\nlender API key: {tenant.lender_key}\n")
        print_summary(summary)
        if keep_running:
            _stage(f"API and dashboard up at {dashboard} — log in with the lender key above; Ctrl-C stops")
            _stop_on_signals()
            api.wait()
        return summary
    finally:
        api.stop()


def _stop_on_signals() -> None:
    """Ctrl-C or SIGTERM end --keep-running cleanly (a shell may start us with SIGINT ignored)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def _raise(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, _raise)
    signal.signal(signal.SIGTERM, _raise)


class _Clip:
    """Annotated frames of one camera, for OUT/annotated.mp4."""

    def __init__(self, camera_id: str) -> None:
        self.camera_id = camera_id
        self.frames: list[Any] = []
        self._annotator: Any = None

    def add(self, camera_id: str, image: Any, dets: Any, ts: float) -> None:
        if camera_id != self.camera_id:
            return
        from datetime import datetime, timezone

        from vision.annotate import Annotator

        if self._annotator is None:
            self._annotator = Annotator()
        when = datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        # The demo films small frames to stay fast; the clip is drawn at twice the size to be readable.
        import dataclasses

        import cv2

        big = cv2.resize(image, None, fx=CLIP_SCALE, fy=CLIP_SCALE, interpolation=cv2.INTER_CUBIC)
        scaled = dataclasses.replace(dets, xyxy=dets.xyxy * CLIP_SCALE)
        self.frames.append(self._annotator.annotate(big, scaled, header=f"{camera_id}  {when}"))

    def write(self, out: Path) -> Path | None:
        import cv2

        if not self.frames:
            return None
        h, w = self.frames[0].shape[:2]
        for name, fourcc in (("annotated.mp4", "mp4v"), ("annotated.avi", "MJPG")):
            path = out / name
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), 8.0, (w, h))
            if not writer.isOpened():
                continue
            for f in self.frames:
                writer.write(f)
            writer.release()
            if path.is_file() and path.stat().st_size > 0:
                return path
        return None


def _write_json(path: Path, data: Any) -> None:
    import json

    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def lender_summary(api: Any, tenant: Any, stats: Any) -> dict[str, Any]:
    """What the lender sees through the API (the lender's own key)."""
    key = tenant.lender_key
    head = api.get(f"/v1/flocks/{tenant.flock_id}/headcount", key)
    flock = api.get(f"/v1/flocks/{tenant.flock_id}", key)
    val = api.get(f"/v1/loans/{tenant.loan_id}/valuation", key)
    birds = api.items(f"/v1/flocks/{tenant.flock_id}/birds", key)
    alerts = api.alerts(key, status="open")
    chain = api.get("/v1/devices/demo-edge-1/chain/verify", key)
    dead = sum(1 for b in birds if b["health"] == "suspected_dead")
    sick = sum(1 for b in birds if b["health"] in ("suspected_sick", "lethargic"))
    return {
        "farm": FARM, "lender": LENDER, "loan": tenant.loan_id, "as_of": head.get("as_of"),
        "headcount": head.get("value"), "headcount_low": head.get("low"), "headcount_high": head.get("high"),
        "headcount_stale": head.get("stale"), "placed_count": flock.get("placed_count"),
        "registered_birds": len(birds), "mortality_suspected_dead": dead, "sick_or_lethargic": sick,
        "mortality_rate": round(dead / max(len(birds), 1), 4),
        "mean_weight_g": val.get("mean_weight_g"), "price_per_kg": val.get("price_per_kg"),
        "currency": val.get("currency"), "collateral_value": val.get("value"),
        "collateral_value_low": val.get("value_low"), "collateral_value_high": val.get("value_high"),
        "outstanding": val.get("outstanding"), "ltv": val.get("ltv"), "ltv_limit": val.get("ltv_limit"),
        "above_limit": val.get("above_limit"),
        "reports_uploaded": stats.uploaded, "flock_reports": stats.reports,
        "registry_snapshots": stats.registry_snapshots, "chain_ok": chain.get("ok"),
        "alerts": [{"kind": a["kind"], "severity": a["severity"], "message": a["message"]} for a in alerts],
    }


def print_summary(s: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    def num(v: Any, fmt: str = "{:,.0f}") -> str:
        return "–" if v is None else fmt.format(v)

    console = Console()
    t = Table(title=f"Lender summary — {s['farm']} ({s['lender']}), as of {s['as_of']}", show_header=False)
    t.add_column("metric", style="bold")
    t.add_column("value", justify="right")
    band = f" (band {num(s['headcount_low'])}–{num(s['headcount_high'])})"
    t.add_row("headcount", num(s["headcount"]) + band + (" STALE" if s["headcount_stale"] else ""))
    # What the farm declared at placement: a flock cannot grow past it, so a count above it is the
    # cameras' uncertainty (or birds from elsewhere), worth reading next to the band.
    t.add_row("placed (farm's record)", num(s.get("placed_count")))
    t.add_row("registered birds (digital IDs)", num(s["registered_birds"]))
    t.add_row("mortality (suspected dead)", f"{s['mortality_suspected_dead']} ({s['mortality_rate']:.1%})")
    t.add_row("sick or lethargic", num(s["sick_or_lethargic"]))
    t.add_row("average weight", num(s["mean_weight_g"], "{:,.0f} g"))
    cur = s["currency"] or ""
    t.add_row("price", num(s["price_per_kg"], "{:.2f} " + cur + "/kg"))
    t.add_row("collateral value", f"{num(s['collateral_value'], '{:,.2f}')} {cur} "
              f"(band {num(s['collateral_value_low'], '{:,.2f}')}–{num(s['collateral_value_high'], '{:,.2f}')})")
    t.add_row("outstanding", f"{num(s['outstanding'], '{:,.2f}')} {cur}")
    t.add_row("LTV", f"{num(s['ltv'], '{:.1%}')} (limit {num(s['ltv_limit'], '{:.0%}')})"
              + (" ABOVE LIMIT" if s["above_limit"] else ""))
    t.add_row("reports", f"{s['flock_reports']} flock reports + {s['registry_snapshots']} registry snapshots, "
              f"chain {'verified' if s['chain_ok'] else 'BROKEN'}")
    console.print(t)
    if s["alerts"]:
        at = Table(title="Open alerts", show_header=True, header_style="bold")
        at.add_column("kind")
        at.add_column("severity")
        at.add_column("message")
        for a in s["alerts"]:
            at.add_row(a["kind"], a["severity"], a["message"])
        console.print(at)
    else:
        console.print("Open alerts: none")
    tc = s.get("truth_check")
    if tc:
        told = ", ".join("not yet" if h is None else f"{h:g} h" for h in tc["death_to_lender_h_at_most"]) or "–"
        console.print(
            f"checked against the synthetic truth (hourly series, {tc['buckets_with_headcount']} buckets): "
            f"headcount off by {num(tc['headcount_mean_error'], '{:+.1f}')} on average "
            f"(mean |error| {num(tc['headcount_mean_abs_error'], '{:.1f}')}), band holds the truth in "
            f"{tc['band_holds_truth']}; deaths {tc['deaths_reported']} reported for {tc['deaths_true']} "
            f"({tc['deaths_reported_before_any_death']} before any death); death -> lender within {told}")
    o = s["outputs"]
    console.print(f"annotated video: {o['video']}")
    console.print(f"charts: {o['headcount']}, {o['weight']}, {o['valuation']}")
    console.print(f"dashboard: [bold]{s['dashboard']['url']}[/]  (lender API key: {s['dashboard']['lender_api_key']})")
    console.print(f"finished in {s['wall_time_s']:.0f} s")


def hourly_series(api: Any, tenant: Any) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The lender's hourly flock series over the last 15 days of reports, and the query it used."""
    from datetime import timedelta

    key = tenant.lender_key
    head = api.get(f"/v1/flocks/{tenant.flock_id}/headcount", key)
    end = datetime.fromisoformat(str(head["as_of"]).replace("Z", "+00:00")) + timedelta(hours=1)
    start = end - timedelta(days=15)
    rng = {"from": start.isoformat(), "to": end.isoformat(), "bucket": "hour"}
    return list(api.get(f"/v1/flocks/{tenant.flock_id}/timeseries", key, **rng)["points"]), rng


def write_charts(api: Any, tenant: Any, out: Path,
                 series: tuple[list[dict[str, Any]], dict[str, str]]) -> dict[str, Path]:
    """headcount.png, weight.png, valuation.png from the API's time series (`hourly_series`) and the
    loan's valuation history over the same range (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = tenant.lender_key
    pts, rng = series
    vpts = api.get(f"/v1/loans/{tenant.loan_id}/valuation/history", key, **rng)["points"]

    def t(p: dict[str, Any]) -> Any:  # matplotlib plots datetimes; its stubs only say numbers
        return datetime.fromisoformat(str(p["t"]).replace("Z", "+00:00"))

    outs: dict[str, Path] = {}

    def save(fig: Any, name: str) -> None:
        fig.autofmt_xdate()
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        outs[name] = path

    fig, ax = plt.subplots(figsize=(8, 4))
    hp = [p for p in pts if p["headcount"] is not None]
    ax.plot([t(p) for p in hp], [p["headcount"] for p in hp], "o-", color="#2f6f4f", label="verified headcount")
    ax.fill_between([t(p) for p in hp], [p["headcount_low"] for p in hp], [p["headcount_high"] for p in hp],
                    color="#2f6f4f", alpha=0.2, label="band")
    dead = [p for p in pts if p["mortality"]]
    if dead:
        ax.bar([t(p) for p in dead], [p["mortality"] for p in dead], width=0.08, color="#b83232",
               label="suspected dead")
    stale = [p for p in pts if p["stale"]]
    if stale:
        ax.plot([t(p) for p in stale], [0] * len(stale), "x", color="#b7791f", label="stale (camera)")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("birds")
    ax.set_title(f"{FARM}: headcount")
    ax.legend(loc="lower left")
    save(fig, "headcount")

    fig, ax = plt.subplots(figsize=(8, 4))
    wp = [p for p in pts if p["mean_weight_g"] is not None]
    ax.plot([t(p) for p in wp], [p["mean_weight_g"] for p in wp], "o-", color="#2f6f4f", label="measured (size)")
    ep = [p for p in pts if p["expected_weight_g"] is not None]
    ax.plot([t(p) for p in ep], [p["expected_weight_g"] for p in ep], "--", color="#888",
            label="breed growth curve (API)")
    ax.set_ylabel("average weight (g)")
    ax.set_title(f"{FARM}: average weight")
    ax.legend(loc="upper left")
    save(fig, "weight")

    fig, ax = plt.subplots(figsize=(8, 4))
    vp = [p for p in vpts if p["value"] is not None]
    ax.plot([t(p) for p in vp], [p["value"] for p in vp], "o-", color="#2f6f4f", label="collateral value")
    loan = api.get(f"/v1/loans/{tenant.loan_id}", key)
    if vp:
        ax.axhline(loan["outstanding"], color="#b83232", linestyle="--", label="outstanding")
        ax.axhline(loan["outstanding"] / loan["ltv_limit"], color="#b7791f", linestyle=":",
                   label=f"value at LTV limit {loan['ltv_limit']:.0%}")
    ax.set_ylim(bottom=0)
    ax.set_ylabel(loan["currency"])
    ax.set_title(f"{FARM}: collateral value")
    ax.legend(loc="lower left")
    save(fig, "valuation")
    return outs
