"""Small shipped files, and the one place their paths are named.

The open hand model (``open_hand_{right,left}.npz``), the default engine checkpoint, the hand
landmarker bundle, the landmark noise model and the sample clip with its ground truth.
"""
from pathlib import Path

#: This folder.
ASSETS = Path(__file__).resolve().parent
#: The bundled default engine (the landmark variant, DESIGN.md §3): one ``.npz``, read without pickle.
DEFAULT_CHECKPOINT = ASSETS / "default_engine.npz"
#: The MediaPipe Tasks hand landmarker bundle, built by ``python -m dahyf.assets.landmarker_task``.
HAND_LANDMARKER_TASK = ASSETS / "hand_landmarker.task"
#: The landmark noise model the synthetic training data uses.
LANDMARK_NOISE = ASSETS / "landmark_noise.json"
#: MediaPipe against a rendered clip's exact ground truth: the landmark map and the world-landmark noise.
LANDMARK_RENDERED = ASSETS / "landmark_rendered.json"
#: The bundled sample clip, its ground truth (dahyf.sample_video) and their folder.
SAMPLE_DIR = ASSETS / "sample"
SAMPLE_VIDEO = SAMPLE_DIR / "open_hand_sample.mp4"
SAMPLE_GT = SAMPLE_DIR / "open_hand_sample_gt.npz"


def open_hand_file(side: str) -> Path:
    """The bundled open hand model of ``side`` ('right' or 'left')."""
    return ASSETS / f"open_hand_{side}.npz"
