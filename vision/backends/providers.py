"""onnxruntime execution providers chosen by short name.

"cpu" everywhere; "cuda" and "tensorrt" with onnxruntime-gpu (Jetson: TensorRT first, CUDA as
fallback); "openvino" with onnxruntime-openvino on Intel boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

PROVIDERS: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def resolve_providers(names: Sequence[str]) -> list[str]:
    """Map short names to onnxruntime provider names, in priority order.

    Unknown names and names whose provider this onnxruntime build lacks raise ValueError; CPU is
    always appended last as the fallback for ops a GPU provider cannot run.
    """
    if isinstance(names, str):
        names = [names]
    if not names:
        raise ValueError(f"providers: give at least one of {sorted(PROVIDERS)}")
    have = set(available_providers())
    out: list[str] = []
    for raw in names:
        name = raw.strip().lower()
        if name not in PROVIDERS:
            raise ValueError(f"providers: unknown provider {raw!r}; valid names are {sorted(PROVIDERS)}")
        full = PROVIDERS[name]
        if full not in have:
            short_have = sorted(k for k, v in PROVIDERS.items() if v in have)
            raise ValueError(
                f"providers: {raw!r} ({full}) is not available in this onnxruntime build; available: {short_have}"
            )
        if full not in out:
            out.append(full)
    if PROVIDERS["cpu"] not in out:
        out.append(PROVIDERS["cpu"])
    return out


def make_session(
    model_path: Path | str, providers: Sequence[str] = ("cpu",), *, threads: int = 0, spin: bool = False
) -> Any:
    """An onnxruntime InferenceSession with sane edge defaults (threads=0 lets ORT pick).

    spin=False turns off onnxruntime's busy-waiting of idle intra-op threads. On a 2-4 core edge box the
    pipeline interleaves the detector, the embedder and Python (tracking, registry): threads spinning
    after the detector's run took the cores from them. Measured with `flockid bench pipeline` on 2 cores:
    pipeline 60.8 -> 46.7 ms/frame, bare detector unchanged (25.5 / 24.3 ms). It is a trade of wall time
    for CPU, larger for small inputs: later, a 320 px detector alone took 15.3 ms spinning and 24.0 ms
    not, and the whole pipeline with a spinning detector took 6-12% less wall time for 20-30% more
    CPU (issue 3's closing note; `PipelineConfig.detector_spin`). The edge keeps the CPU: a Pi at
    10 fps has the wall time to spare, not the cores or the heat."""
    import onnxruntime as ort

    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=resolve_providers(providers))
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        if isinstance(exc, ValueError) and str(exc).startswith("providers:"):
            raise
        raise ValueError(f"{path}: cannot load ONNX model: {exc}") from exc
