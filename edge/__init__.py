"""The edge box by the camera: capture, scheduler, pipelines, signed hash-chained reports,
store-and-forward outbox, uploader, /healthz and /metrics.

Importing `edge` loads nothing heavy (no torch, no ultralytics, no OpenCV); see `edge.app` for the
programmatic entry points (`EdgeApp(config).run()` and `EdgeApp(config).run_until_exhausted()`).
"""
