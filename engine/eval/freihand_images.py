"""The annotated FreiHAND images of ``../shared/media/freihand`` (COCO-style json, MediaPipe keypoint
order) and the real MediaPipe landmarker run on them: shared by the landmark-noise calibration
(dahyf.train.noise_calibration) and the fidelity benchmark (dahyf.eval.bench_fidelity).

The images carry 2-D ground truth only (21 keypoints in px); they are 2 distinct poses, 4 backgrounds each.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..hand.tables import NUM_KEYPOINTS

#: (W, H) px of the FreiHAND images (their own size; that it equals CROP_SIZE is a coincidence).
IMAGE_SIZE = (224, 224)


def load_freihand(folder: Path) -> list[tuple[Path, np.ndarray]]:
    """The images and their (21, 2) px ground-truth keypoints from ``test_freihand.json``."""
    data = json.loads((folder / "test_freihand.json").read_text())
    by_id = {im["id"]: im["file_name"] for im in data["images"]}
    out = []
    for ann in data["annotations"]:
        kp = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)[:, :2]
        if kp.shape[0] != NUM_KEYPOINTS:
            raise ValueError(f"expected {NUM_KEYPOINTS} keypoints per annotation, got {kp.shape[0]}")
        out.append((folder / by_id[ann["image_id"]], kp))
    return out


def run_mediapipe(images: list[Path], upscale: int = 2) -> list[np.ndarray | None]:
    """Real MediaPipe landmarks (21, 2) px per image, ``None`` where no hand was found.

    The IMAGE_SIZE FreiHAND crops are upscaled ``upscale``× (bicubic) before detection, as a
    small hand in a larger frame is what the landmarker sees in a video; results are mapped back.
    """
    import cv2

    from ..capture.tracking import HandDetector

    out = []
    with HandDetector(max_hands=1, min_detection_confidence=0.3, mode="image") as detector:
        for path in images:
            bgr = cv2.imread(str(path))
            if bgr is None:
                raise FileNotFoundError(f"cannot read image {path}")
            h, w = bgr.shape[:2]
            big = cv2.resize(bgr, (w * upscale, h * upscale), interpolation=cv2.INTER_CUBIC)
            found = detector.detect(cv2.cvtColor(big, cv2.COLOR_BGR2RGB))
            out.append(found[0].landmarks.astype(np.float64) / upscale if found else None)
    return out
