"""Detector smoke training (interrupted, then resumed), ONNX export with parity, int8, eval - all in a
subprocess whose sockets refuse every connection, which records any attempt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = r'''
import json, socket, sys
from pathlib import Path

attempts = []

def _deny(*args, **kwargs):
    attempts.append(repr(args)[:200])
    raise OSError("network unreachable (test guard)")

socket.socket.connect = lambda self, *a, **k: _deny(*a)
socket.socket.connect_ex = lambda self, *a, **k: _deny(*a)
socket.create_connection = _deny
socket.getaddrinfo = _deny
socket.gethostbyname = _deny

from training.detect import recipe_config, train_detector
from training.export import export_detector
from training.int8 import int8_report

data, out = Path(sys.argv[1]), Path(sys.argv[2])

class Stop(Exception):
    pass

def stop_after_first(trainer):
    if trainer.epoch == 0:
        raise Stop("simulated interruption after epoch 1")

cfg = recipe_config("smoke", data=data, epochs=2)
try:
    train_detector(cfg, out, callbacks={"on_fit_epoch_end": stop_after_first})
    interrupted = False
except Stop:
    interrupted = True
last_exists = (out / "train" / "weights" / "last.pt").is_file()
record = train_detector(cfg, out)
exported = export_detector(out / "best.pt", out / "best.onnx", calib=data)
int8 = int8_report("detect", out / "best.onnx", data)
# fine-tune the shipped detector on the same (real-format) data: --from default
tuned = train_detector(recipe_config("smoke", data=data, model="default"), out.parent / "tuned")
print("RESULT:" + json.dumps({"attempts": attempts, "interrupted": interrupted, "last_exists": last_exists,
                              "record": record, "export": exported, "int8": int8,
                              "tuned": tuned}))
'''


@pytest.fixture(scope="module")
def trained(tiny_yolo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("det")
    env = dict(os.environ)
    env["FLOCKID_ULTRALYTICS_DIR"] = str(out / "ucache")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tiny_yolo), str(out / "run")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = next(ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("RESULT:"))
    result = json.loads(line[len("RESULT:"):])
    result["out"] = out / "run"
    result["ucache"] = out / "ucache"
    return result


def test_training_and_export_make_no_connection_attempt(trained: dict) -> None:
    assert trained["attempts"] == []
    # the offline font was staged where ultralytics looks, so it never needed the network
    assert (trained["ucache"] / "Ultralytics" / "Arial.ttf").is_file()


def test_fine_tune_from_shipped_detector(trained: dict) -> None:
    from vision.weights import default_detector_path

    tuned = trained["tuned"]
    assert tuned["source_model"] == str(default_detector_path().with_suffix(".pt"))
    assert set(tuned["metrics"]) >= {"mAP50", "mAP50-95"}


def test_interrupted_training_resumes(trained: dict) -> None:
    assert trained["interrupted"] and trained["last_exists"]
    assert trained["record"]["resumed"] is True
    import torch

    ck = torch.load(trained["out"] / "best.pt", map_location="cpu", weights_only=False)
    assert ck["flockid"]["data_sha256"] == trained["record"]["data_sha256"]
    assert ck["flockid"]["config"]["epochs"] == 2


def test_training_writes_metrics_and_card(trained: dict) -> None:
    out = trained["out"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["metrics"]) >= {"mAP50", "mAP50-95", "precision", "recall"}
    card = json.loads((out / "best.json").read_text())
    assert card["task"] == "detect" and card["class_names"] == ["chicken"]
    assert "AGPL-3.0" in card["licence"]


def test_export_parity_and_card(trained: dict) -> None:
    exp = trained["export"]
    assert exp["parity_max_abs_diff"] < exp["tolerance"]
    onnx_path = Path(exp["onnx"])
    card = json.loads(onnx_path.with_suffix(".json").read_text())
    for key in ("task", "input_size", "class_names", "training_data_sha256", "config", "metrics", "date",
                "source_checkpoint_sha256", "licence", "model_sha256"):
        assert key in card, key
    from training.cards import file_sha256

    assert card["source_checkpoint_sha256"] == file_sha256(trained["out"] / "best.pt")
    assert card["model_sha256"] == file_sha256(onnx_path)
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: np.zeros((1, 3, 64, 64), np.float32)})[0]
    assert out.shape[:2] == (1, 5)  # (B, 4 + nc, N), no NMS in the graph


def test_int8_report_has_before_after(trained: dict) -> None:
    r = trained["int8"]
    assert Path(r["int8_model"]).is_file()
    assert r["latency_ms_fp32"] > 0 and r["latency_ms_int8"] > 0
    assert set(r["accuracy_fp32"]) == set(r["accuracy_int8"]) >= {"mAP50", "mAP50-95"}


def test_eval_detect_cli_json_with_groups(trained: dict, tiny_yolo: Path) -> None:
    from typer.testing import CliRunner

    from flockid.cli import app

    res = CliRunner().invoke(app, ["eval", "detect", "--model", trained["export"]["onnx"], "--data",
                                   str(tiny_yolo), "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout.strip().splitlines()[-1])
    assert payload["images"] == 4 and payload["instances"] > 0
    assert sorted(g["group"] for g in payload["groups"]) == ["day", "night"]
    assert 0.0 <= payload["mAP50-95"] <= payload["mAP50"] <= 1.0


def test_unknown_recipe_and_bad_model_are_rejected(tiny_yolo: Path) -> None:
    from training.detect import recipe_config, resolve_model_source

    with pytest.raises(ValueError, match="valid"):
        recipe_config("nope", data=tiny_yolo)
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        resolve_model_source("yolo11n.pt")
    with pytest.raises(ValueError, match="multiple of 32"):
        recipe_config("smoke", data=tiny_yolo, imgsz=100)
