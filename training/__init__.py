"""Training side of FlockID (the only package that may import ultralytics; torch lives here too).

- `training.detect`     detector training (ultralytics YOLO, offline-safe via `training.offline`)
- `training.reid_*`     bird re-ID model, data (P x K batches, augmentations) and training (torch)
- `training.export`     ONNX export with a parity check; `training.int8` static int8 + before/after report
- `training.eval_*`     detection mAP, re-ID Rank-k/mAP, tracking HOTA (trackeval) - on ONNX models,
                        through the same `vision` code the edge runs
- `training.bench`      `flockid bench pipeline`
- `training.cards`      the JSON model card written next to every model

Importing this package imports nothing heavy.
"""
