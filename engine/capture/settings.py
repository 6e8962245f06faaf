"""Capture defaults: the one place the CLI, the Python API and the Blender add-on read them from.

DEFAULT_THRESHOLD: projection confidence below which a frame holds the last confident pose. On the
default engine 0.85 keeps 99.7 % of correct synthetic hands (97.1 % at the full measured landmark
noise) and rejects 76 % of swapped-finger landmark sets and all random ones
(benchmarks/landmark_engine.md); real MediaPipe landmarks score ≥ 0.94 on the test video.
DEFAULT_SMOOTH: zero-lag temporal smoothing strength, 0 (off) to 1 (a Gaussian-weighted local quadratic,
σ = smooth × 0.15 s × 1.75; see dahyf.capture.filters).
DEFAULT_CHUNK_FRAMES: frames per streamed chunk (and per batched engine forward).
DEFAULT_LIVE_SMOOTH: smoothing of live capture (the causal One-Euro filter; see BENCHMARKS.md, live
capture). Here, not in ``live``, so that the add-on's panels read it without importing the capture
machinery (OpenCV) when Blender starts.
"""
from ..hand.tables import SIDES

DEFAULT_THRESHOLD = 0.85
DEFAULT_SMOOTH = 0.5
DEFAULT_CHUNK_FRAMES = 32
DEFAULT_LIVE_SMOOTH = 0.5
#: The ``hands`` option of a capture: one side, or both.
HANDS_CHOICES = SIDES + ("both",)


def capture_sides(hands: str) -> tuple[str, ...]:
    """The sides a capture with ``hands`` ('right' | 'left' | 'both') tracks, in track order."""
    return SIDES if hands == "both" else (hands,)


#: Typical 35 mm-equivalent lenses, mm, for the help texts and messages that ask for one (the CLI's
#: --lens, the Blender panels' Lens, the refusal of an implausible lens).
TYPICAL_LENSES = "a phone's main camera about 24-28, an ultra-wide or action camera 13-16, a telephoto 70-120"
