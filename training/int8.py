"""int8 static quantisation with onnxruntime and the before/after report (accuracy and speed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.export import detect_inputs, latency_ms, quantize_int8, reid_inputs, yolo_decode_nodes

CALIB_IMAGES = 64
ACCURACY_IMAGES = 100


def _accuracy(kind: str, model: Path, calib: Path) -> dict[str, Any] | None:
    """Task accuracy on the calibration data when it carries labels; None when it cannot."""
    if kind == "detect" and Path(calib).suffix in (".yaml", ".yml"):
        from training.eval_detect import evaluate_detector

        r = evaluate_detector(model, calib, max_images=ACCURACY_IMAGES)
        return {"mAP50": r["mAP50"], "mAP50-95": r["mAP50-95"], "images": r["images"]}
    if kind == "reid" and (Path(calib) / "query").is_dir() and (Path(calib) / "gallery").is_dir():
        from training.eval_reid import evaluate_reid

        r = evaluate_reid(model, calib, threshold=0.5)
        return {"rank1": r["rank1"], "mAP": r["mAP"], "queries": r["queries"]}
    return None


def int8_report(kind: str, fp32: Path, calib: Path) -> dict[str, Any]:
    """Write `<fp32 stem>.int8.onnx` (+ card) and compare it with the fp32 model."""
    import json

    import onnxruntime as ort

    from training.cards import card_path, write_card

    fp32 = Path(fp32)
    out = fp32.with_name(fp32.stem + ".int8.onnx")
    sess = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    shape = sess.get_inputs()[0].shape
    size = int(shape[2])
    if kind == "detect":
        batches = detect_inputs(size, calib, n=CALIB_IMAGES)
        probe = batches[0]
    else:
        batches = [b[i : i + 1] for b in reid_inputs(size, calib, n=CALIB_IMAGES) for i in range(len(b))]
        probe = reid_inputs(size, calib, n=8)[0]
    exclude = yolo_decode_nodes(fp32) if kind == "detect" else []
    quantize_int8(fp32, out, batches, exclude)
    card = json.loads(card_path(fp32).read_text())
    card.update({"format": "onnx-int8-qdq", "quantised_from": fp32.name,
                 "quantisation": {"method": "onnxruntime quantize_static QDQ, per-channel int8 weights, "
                                            "uint8 activations, MinMax calibration",
                                  "calibration_data": str(calib), "calibration_samples": len(batches),
                                  "kept_float": exclude}})
    card.pop("model_sha256", None)
    write_card(out, card)
    report: dict[str, Any] = {
        "int8_model": str(out),
        "size_mb_fp32": round(fp32.stat().st_size / 1e6, 2),
        "size_mb_int8": round(out.stat().st_size / 1e6, 2),
        "latency_ms_fp32": latency_ms(fp32, probe),
        "latency_ms_int8": latency_ms(out, probe),
    }
    before, after = _accuracy(kind, fp32, calib), _accuracy(kind, out, calib)
    if before is not None and after is not None:
        report["accuracy_fp32"] = before
        report["accuracy_int8"] = after
        card["metrics"] = {**card.get("metrics", {}), "int8_vs_fp32_on_calib": {"fp32": before, "int8": after}}
        write_card(out, card)
    return report
