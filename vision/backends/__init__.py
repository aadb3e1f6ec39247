"""Inference backends (onnxruntime) shared by the detector and the embedder."""
