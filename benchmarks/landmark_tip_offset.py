"""Where MediaPipe puts a fingertip, against ground truth: the signed offset of its tip landmark along
the finger's last bone (DIP -> tip), in units of that bone's projected length; negative = short of the
true tip. On the FreiHAND images (real hands; their tips are MANO's tip vertices, the convention of the
hand model) and on the rendered sample clip (the open hand model, on which the landmark map of
``engine/assets/landmark_rendered.json`` is fitted). If MediaPipe's short tips were an artefact of the
renderer, the real hands would not show them.

Run: ``.venv/bin/python benchmarks/landmark_tip_offset.py`` (about a minute; needs ../shared/media/freihand).
"""
from __future__ import annotations

import numpy as np

from dahyf.eval.bench_fidelity import DEFAULT_FREIHAND
from dahyf.eval.freihand_images import load_freihand, run_mediapipe
from dahyf.sample_video import SAMPLE_GT, SAMPLE_VIDEO
from dahyf.train.noise_calibration import landmark_map, mediapipe_on_clip

TIPS = (4, 8, 12, 16, 20)


def tip_offsets(landmarks: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(5,) signed offsets of the tip landmarks along DIP -> tip of the truth, in bone lengths.

    landmarks, truth : (21, 2) px, MediaPipe keypoint order.
    """
    bone = truth[list(TIPS)] - truth[[t - 1 for t in TIPS]]
    return np.einsum("kc,kc->k", landmarks[list(TIPS)] - truth[list(TIPS)], bone) / np.einsum("kc,kc->k", bone, bone)


def main() -> None:
    images = load_freihand(DEFAULT_FREIHAND)
    preds = run_mediapipe([p for p, _ in images])
    real = np.array([tip_offsets(p, g) for p, (_, g) in zip(preds, images) if p is not None])
    gt = np.load(SAMPLE_GT)
    mp = mediapipe_on_clip(SAMPLE_VIDEO)
    rendered = np.array([tip_offsets(lm, gt["joints2d"][f]) for f, lm in zip(mp["frame"], mp["landmarks"])])
    M = landmark_map()
    print("median tip offset along the last bone (thumb, index, middle, ring, pinky; all)")
    print(f"  FreiHAND, real hands ({len(real)} images): {np.round(np.median(real, 0), 2)}; {np.median(real):.2f}")
    print(f"  rendered sample clip ({len(rendered)} frames): {np.round(np.median(rendered, 0), 2)}; {np.median(rendered):.2f}")
    print(f"  the shipped map's tip rows keep {np.round([M[t, t] for t in TIPS], 2)} of the model's tip")


if __name__ == "__main__":
    main()
