"""Small shipped files: the open hand model, the default engine checkpoint, the hand landmarker bundle."""
from pathlib import Path

#: The MediaPipe Tasks hand landmarker bundle, built by ``python -m dahyf.assets.landmarker_task``.
HAND_LANDMARKER_TASK = Path(__file__).resolve().parent / "hand_landmarker.task"
