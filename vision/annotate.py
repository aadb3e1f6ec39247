"""Draw boxes, track/bird IDs and counts on frames. Only annotators draw; trackers never do."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from vision.detections import Detections


def _colour(key: int) -> tuple[int, int, int]:
    # Stable, well-spread colour per id (golden-ratio hue walk), BGR.
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((key * 0.618033988749895) % 1.0, 0.75, 0.95)
    return int(b * 255), int(g * 255), int(r * 255)


@dataclass
class Annotator:
    thickness: int = 2
    font_scale: float = 0.4
    show_confidence: bool = False

    def annotate(self, frame_bgr: np.ndarray, dets: Detections, *, header: str | None = None) -> np.ndarray:
        """A copy of the frame with boxes, labels (bird ID, else track ID) and a header line."""
        import cv2

        out = frame_bgr.copy()
        for i in range(len(dets)):
            x1, y1, x2, y2 = (round(float(v)) for v in dets.xyxy[i])
            tid = int(dets.track_id[i]) if dets.track_id is not None else -1
            bird = str(dets.bird_id[i]) if dets.bird_id is not None and dets.bird_id[i] else ""
            colour = _colour(zlib.crc32(bird.encode()) if bird else max(tid, 0))
            cv2.rectangle(out, (x1, y1), (x2, y2), colour, self.thickness)
            label = bird.replace("bird-", "#") if bird else (f"t{tid}" if tid >= 0 else "")
            if self.show_confidence:
                label = f"{label} {dets.confidence[i]:.2f}".strip()
            if label:
                (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, self.font_scale, 1)
                cv2.rectangle(out, (x1, max(0, y1 - th - 4)), (x1 + tw + 2, y1), colour, -1)
                cv2.putText(out, label, (x1 + 1, max(th, y1 - 3)), cv2.FONT_HERSHEY_SIMPLEX, self.font_scale,
                            (0, 0, 0), 1, cv2.LINE_AA)
        text = header if header is not None else f"{dets.camera_id}  birds in view: {len(dets)}"
        cv2.rectangle(out, (0, 0), (min(out.shape[1], 9 * len(text) + 10), 20), (0, 0, 0), -1)
        cv2.putText(out, text, (5, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        return out
