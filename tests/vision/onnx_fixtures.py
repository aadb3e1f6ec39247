"""Tiny ONNX models built with onnx.helper, for backend tests (no training, no torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_constant_yolo(path: Path, raw: np.ndarray, imgsz: int = 64, opset: int = 17) -> Path:
    """A 'detector' whose output is always `raw` (1, 4+nc, N) whatever the input (1, 3, imgsz, imgsz)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    const = numpy_helper.from_array(raw.astype(np.float32), name="raw")
    # Multiply by (mean(input)*0 + 1) so the graph depends on its input, as a real model does.
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["z", "one"], ["k"]),
        helper.make_node("Mul", ["raw", "k"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "const_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, imgsz, imgsz])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(raw.shape))],
        initializer=[
            const,
            numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
            numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def make_mean_colour_embedder(path: Path, hw: tuple[int, int] = (32, 32), opset: int = 17) -> Path:
    """An 'embedder' mapping a crop to its mean RGB colour (B, 3): identical crops -> identical vectors."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["embedding"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "mean_colour",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, hw[0], hw[1]])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
