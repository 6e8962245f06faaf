"""The product's own rendered clips: the sample video and the fidelity clips, with exact ground truth.

``python -m dahyf.sample_video --out engine/assets/sample`` regenerates ``open_hand_sample.mp4``
and ``open_hand_sample_gt.npz`` from the bundled open hand model only (no third-party media);
``python -m dahyf.sample_video --clips benchmarks/fidelity_clips`` renders the fidelity benchmark's
clips. Modules: ``script`` (the gesture script and the ground truth), ``clips`` (the fidelity
clips), ``occlusion`` (the keypoints a clip's camera cannot see), ``render`` (scene, Blender child
process, encoding), ``evaluate`` (scoring against the ground truth). The ground truth is exact and deterministic; the rendered pixels are deterministic up
to the floating-point order of Cycles' threads.
"""
from __future__ import annotations

from .evaluate import evaluate_take_against_gt, hand_size_px, mediapipe_check
from .render import Look, forearm_mesh, generate, posed_forearm, write_scene
from .script import (CONTROLS, DEFAULT_OUT, DURATION_S, FOCAL, FPS, GT_NAME, IMAGE_SIZE, SAMPLE_GT, SAMPLE_VIDEO,
                     VIDEO_NAME, control_tracks, global_rotations, hand_frame, load_ground_truth, make_ground_truth,
                     model_digest, pose_from_controls, project, rodrigues, rotation_angle_deg, rotation_to_axis_angle,
                     save_ground_truth)

__all__ = [
    "CONTROLS", "DEFAULT_OUT", "DURATION_S", "FOCAL", "FPS", "GT_NAME", "IMAGE_SIZE", "SAMPLE_GT", "SAMPLE_VIDEO",
    "VIDEO_NAME", "Look", "control_tracks", "evaluate_take_against_gt", "forearm_mesh", "generate",
    "global_rotations", "hand_frame", "hand_size_px", "load_ground_truth", "make_ground_truth", "mediapipe_check",
    "model_digest", "pose_from_controls", "posed_forearm", "project", "rodrigues", "rotation_angle_deg",
    "rotation_to_axis_angle", "save_ground_truth", "write_scene",
]
