"""ONNX export of both model kinds, a parity check against the torch model, optional int8.

Detector: ultralytics' own exporter (`nms=False`, output (B, 4+nc, N)), fixed batch 1 at the
trained image size. Re-ID: `torch.onnx.export` of ReidNet, dynamic batch, input RGB [0, 1], output
L2-normalised (B, D). Parity: both models on the same inputs, max |torch - onnx| must stay under
the tolerance or the export fails (and the bad file is removed).
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from training.cards import ULTRALYTICS_LICENCE, file_sha256, read_card, write_card

DEFAULT_OPSET = 17
DETECT_TOLERANCE = 1e-2  # output units: box pixels and class probabilities
REID_TOLERANCE = 1e-4  # unit-vector components


class ParityError(RuntimeError):
    """The ONNX model does not reproduce the torch model within tolerance."""


def checkpoint_kind(path: Path) -> str:
    """'detect' for an ultralytics checkpoint, 'reid' for a FlockID re-ID checkpoint."""
    import torch

    if not Path(path).is_file():
        raise FileNotFoundError(f"model checkpoint not found: {path}")
    if Path(path).suffix != ".pt":
        raise ValueError(f"{path}: export needs a torch checkpoint (.pt)")
    from training.offline import ensure_offline

    ensure_offline()  # unpickling an ultralytics checkpoint imports ultralytics
    ck = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(ck, dict) and "spec" in ck and "model" in ck:
        return "reid"
    if isinstance(ck, dict) and ("model" in ck or "ema" in ck):
        return "detect"
    raise ValueError(f"{path}: neither an ultralytics detector nor a FlockID re-ID checkpoint")


# ----------------------------------------------------------------------------- inputs


def _letterbox_rgb01(img_bgr: np.ndarray, size: int) -> np.ndarray:
    from vision.backends.letterbox import letterbox

    img, _ = letterbox(img_bgr, (size, size))
    return (img[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) / 255.0)[None]


def detect_inputs(size: int, calib: Path | None, n: int = 4, seed: int = 0) -> list[np.ndarray]:
    """(1, 3, S, S) float32 inputs: letterboxed images of `calib` (data.yaml or image folder) or noise."""
    if calib is None:
        rng = np.random.default_rng(seed)
        return [rng.random((1, 3, size, size), dtype=np.float32) for _ in range(n)]
    import cv2

    out = []
    for p in calib_images(calib)[:n]:
        img = cv2.imread(str(p))
        if img is None:
            raise ValueError(f"cannot read calibration image {p}")
        out.append(_letterbox_rgb01(img, size))
    if not out:
        raise ValueError(f"--calib {calib}: no images found")
    return out


def calib_images(calib: Path) -> list[Path]:
    """Images of a data.yaml (val split, else train) or of a folder (recursively), sorted."""
    from training.cards import IMAGE_SUFFIXES

    calib = Path(calib)
    if calib.suffix in (".yaml", ".yml"):
        from training.yolo_data import read_data_yaml

        ds = read_data_yaml(calib)
        return list(ds.splits.get("val") or ds.splits.get("train") or [])
    if calib.is_dir():
        return sorted(p for p in calib.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    raise FileNotFoundError(f"--calib {calib}: expected a data.yaml or a folder of images")


def reid_inputs(size: int, calib: Path | None, n: int = 32, seed: int = 0) -> list[np.ndarray]:
    """(B, 3, S, S) float32 RGB [0, 1] batches of crops from `calib` (crop folder/set) or noise."""
    if calib is None:
        rng = np.random.default_rng(seed)
        return [rng.random((8, 3, size, size), dtype=np.float32)]
    from training.reid_data import load_images

    paths = calib_images(calib)[:n]
    if not paths:
        raise ValueError(f"--calib {calib}: no crops found")
    imgs = load_images(paths, (size, size))
    x = imgs.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    return [x[i : i + 8] for i in range(0, len(x), 8)]


# ----------------------------------------------------------------------------- parity


def max_abs_diff(torch_fn: Any, session: Any, inputs: list[np.ndarray]) -> float:
    import torch

    name = session.get_inputs()[0].name
    worst = 0.0
    with torch.no_grad():
        for x in inputs:
            ref = torch_fn(torch.from_numpy(x)).numpy()
            got = session.run(None, {name: x})[0]
            if ref.shape != got.shape:
                raise ParityError(f"output shape differs: torch {ref.shape} vs onnx {got.shape}")
            worst = max(worst, float(np.max(np.abs(ref - got))))
    return worst


def _session(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


# ----------------------------------------------------------------------------- detector


def export_detector(pt: Path, out: Path, *, imgsz: int | None = None, opset: int = DEFAULT_OPSET,
                    calib: Path | None = None, tolerance: float = DETECT_TOLERANCE) -> dict[str, Any]:
    """Export an ultralytics checkpoint to `out` (.onnx) with a parity-checked card."""
    from training.offline import import_ultralytics

    import_ultralytics()
    import torch
    from ultralytics import YOLO

    pt, out = Path(pt).resolve(), Path(out).resolve()
    ck = torch.load(pt, map_location="cpu", weights_only=False)
    train_args = dict(ck.get("train_args") or {})
    size = int(imgsz or train_args.get("imgsz") or 320)
    if size % 32:
        raise ValueError(f"--imgsz must be a multiple of 32, got {size}")
    with tempfile.TemporaryDirectory(prefix="flockid-export-") as tmp:
        # ultralytics writes next to the checkpoint: export from a private copy
        tmp_pt = Path(tmp) / "model.pt"
        shutil.copyfile(pt, tmp_pt)
        model = YOLO(str(tmp_pt))
        with contextlib.redirect_stdout(sys.stderr):  # stdout is for our result (--json)
            exported = model.export(format="onnx", imgsz=size, opset=opset, simplify=True, nms=False,
                                    dynamic=False, half=False, batch=1, device="cpu", verbose=False)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(exported), out)
    torch_model: Any = YOLO(str(pt)).model
    torch_model = torch_model.float().eval()

    def fwd(x: Any) -> Any:
        y = torch_model(x)
        return y[0] if isinstance(y, (list, tuple)) else y

    sess = _session(out)
    shape = sess.get_outputs()[0].shape
    names_raw = getattr(torch_model, "names", None) or ck.get("flockid", {}).get("class_names") or {}
    names = [names_raw[k] for k in sorted(names_raw)] if isinstance(names_raw, dict) else list(names_raw)
    if len(shape) != 3 or shape[1] != 4 + len(names):
        out.unlink(missing_ok=True)
        raise ParityError(f"exported detector output {shape} is not (B, 4+nc={4 + len(names)}, N)")
    diff = max_abs_diff(fwd, sess, detect_inputs(size, calib))
    if diff > tolerance:
        out.unlink(missing_ok=True)
        raise ParityError(f"detector parity failed: max |torch - onnx| = {diff:.3g} > tolerance {tolerance}")
    src_card = _card_of(pt)
    flock = ck.get("flockid") or {}
    card = {
        "task": "detect",
        "format": "onnx",
        "imgsz": size,
        "input_size": [size, size],
        "input": {"name": sess.get_inputs()[0].name, "layout": "NCHW", "color": "RGB", "scale": "0..1",
                  "resize": "letterbox (pad 114)", "shape": list(sess.get_inputs()[0].shape)},
        "output": {"shape": list(shape), "layout": "(B, 4+nc, N): cx, cy, w, h in input pixels, class scores",
                   "nms": False},
        "class_names": names,
        "training_data_sha256": flock.get("data_sha256") or src_card.get("training_data_sha256"),
        "config": flock.get("config") or src_card.get("config") or _plain(train_args),
        "metrics": src_card.get("metrics", {}),
        "source_checkpoint": pt.name,
        "source_checkpoint_sha256": file_sha256(pt),
        "opset": opset,
        "parity_max_abs_diff": diff,
        "parity_tolerance": tolerance,
        "licence": ULTRALYTICS_LICENCE,
    }
    for k in ("notes", "train_wall_s"):
        if k in src_card:
            card[k] = src_card[k]
    write_card(out, card)
    return {"kind": "detect", "onnx": str(out), "imgsz": size, "parity_max_abs_diff": diff,
            "tolerance": tolerance, "size_mb": round(out.stat().st_size / 1e6, 2)}


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (int, float, str, bool, type(None))) else str(v)) for k, v in d.items()}


def _card_of(model: Path) -> dict[str, Any]:
    """The training card of a checkpoint. `x.pt` and `x.onnx` share `x.json`; once the export has
    written it, it describes the ONNX model and is not the checkpoint's own card."""
    try:
        card = read_card(model)
    except FileNotFoundError:
        return {}
    return card if str(card.get("format", "")).startswith("pytorch") else {}


# ----------------------------------------------------------------------------- re-ID


def export_reid(pt: Path, out: Path, *, opset: int = DEFAULT_OPSET, calib: Path | None = None,
                tolerance: float = REID_TOLERANCE) -> dict[str, Any]:
    import torch

    from training.reid_train import load_reid_checkpoint

    pt, out = Path(pt).resolve(), Path(out).resolve()
    model, ck = load_reid_checkpoint(pt)
    size = int(ck["imgsz"])
    dummy = torch.zeros(2, 3, size, size)
    out.parent.mkdir(parents=True, exist_ok=True)
    import warnings

    with warnings.catch_warnings():
        # the TorchScript exporter is deprecated but needs no onnxscript and gives a plain static graph
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (dummy,), str(out), input_names=["images"], output_names=["embeddings"],
                          dynamic_axes={"images": {0: "batch"}, "embeddings": {0: "batch"}},
                          opset_version=opset, dynamo=False)
    sess = _session(out)
    diff = max_abs_diff(model, sess, reid_inputs(size, calib))
    if diff > tolerance:
        out.unlink(missing_ok=True)
        raise ParityError(f"re-ID parity failed: max |torch - onnx| = {diff:.3g} > tolerance {tolerance}")
    src_card = _card_of(pt)
    card = {
        "task": "reid",
        "format": "onnx",
        "input_size": [size, size],
        "input": {"name": "images", "layout": "NCHW", "color": "RGB", "scale": "0..1",
                  "resize": "stretch crop to input size", "shape": ["batch", 3, size, size]},
        # normalisation is inside the graph: the embedder must feed plain RGB [0, 1]
        "mean": [0.0, 0.0, 0.0],
        "std": [1.0, 1.0, 1.0],
        "embedding_dim": int(ck["spec"]["dim"]),
        "output": {"name": "embeddings", "shape": ["batch", int(ck["spec"]["dim"])], "l2_normalised": True},
        "class_names": ["chicken"],
        "match_threshold": ck.get("match_threshold"),
        "training_data_sha256": ck.get("data_sha256"),
        "train_identities": len(ck.get("train_identities") or []),
        "config": ck.get("config"),
        "metrics": src_card.get("metrics", {}),
        "source_checkpoint": pt.name,
        "source_checkpoint_sha256": file_sha256(pt),
        "opset": opset,
        "parity_max_abs_diff": diff,
        "parity_tolerance": tolerance,
        "licence": src_card.get("licence") or "FlockID re-ID model trained from scratch (Apache-2.0).",
    }
    for k in ("notes", "train_wall_s"):
        if k in src_card:
            card[k] = src_card[k]
    write_card(out, card)
    return {"kind": "reid", "onnx": str(out), "imgsz": size, "parity_max_abs_diff": diff,
            "tolerance": tolerance, "size_mb": round(out.stat().st_size / 1e6, 2)}


# ----------------------------------------------------------------------------- int8


class _Reader:
    """onnxruntime CalibrationDataReader over a list of input arrays."""

    def __init__(self, name: str, batches: list[np.ndarray]) -> None:
        self.name = name
        self._it: Iterator[np.ndarray] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        return None if x is None else {self.name: x}


def yolo_decode_nodes(model_path: Path) -> list[str]:
    """Nodes of the YOLO head's box decoding (DFL, anchors, concat of boxes and scores).

    They must stay float: the final concat mixes box pixels (0..imgsz) with class scores (0..1),
    and one int8 scale for both wipes out the scores. The head's convolutions (cv2/cv3 branches)
    are still quantised.
    """
    import onnx

    nodes = onnx.load(str(model_path), load_external_data=False).graph.node
    if not nodes:
        return []
    last = nodes[-1].name
    prefix = last[: last.rfind("/") + 1] if "/" in last else ""
    if not prefix:
        return []
    return [n.name for n in nodes if n.name.startswith(prefix) and "/cv2." not in n.name
            and "/cv3." not in n.name]


def quantize_int8(fp32: Path, out: Path, batches: list[np.ndarray], exclude: list[str] | None = None) -> Path:
    """Static QDQ int8 quantisation (per-channel weights) calibrated on `batches`."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32, out = Path(fp32), Path(out)
    with tempfile.TemporaryDirectory(prefix="flockid-int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        try:
            quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=False)
        except Exception:  # pre-processing is an optimisation; quantise the raw graph without it
            shutil.copyfile(fp32, pre)
        name = _session(fp32).get_inputs()[0].name
        quantize_static(str(pre), str(out), _Reader(name, batches), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=exclude or [])
    return out


def latency_ms(path: Path, x: np.ndarray, runs: int = 20) -> float:
    """Median wall time of one session.run on x (after 3 warm-up runs)."""
    sess = _session(path)
    name = sess.get_inputs()[0].name
    for _ in range(3):
        sess.run(None, {name: x})
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, {name: x})
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times))
