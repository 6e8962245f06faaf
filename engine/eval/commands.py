"""`dahyf eval`: score predictions with the official FreiHAND / HO3D metrics.

    dahyf eval --dataset freihand --data FreiHAND_pub_v2_eval --pred pred.json [--out metrics.json]

``pred.json`` uses the competition format ``[xyz_list, verts_list]`` (S × 21 × 3 and S × 778 × 3 m, in
the order of the evaluation set); ``dahyf predict`` writes it from an image checkpoint. The ground
truth is read from ``DIR/evaluation_xyz.json`` and ``DIR/evaluation_verts.json`` (the published
FreiHAND evaluation annotations; for HO3D, the same two files written from its evaluation ground truth).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..fileio import atomic_write_text

DATASETS = ("freihand", "ho3d")
KEYS = ("pa_mpjpe_mm", "pa_mpvpe_mm", "f5", "f15", "auc_joints", "auc_verts")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=DATASETS, default="freihand", help="which protocol (default freihand)")
    parser.add_argument("--data", required=True, type=Path,
                        help="folder with evaluation_xyz.json and evaluation_verts.json (ground truth)")
    parser.add_argument("--pred", required=True, type=Path, help="predictions, [xyz_list, verts_list] JSON")
    parser.add_argument("--out", type=Path, help="also write the metrics to this JSON file")


def _load_json(path: Path, what: str):
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); expected {what}") from None


def load_predictions(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a competition-format prediction file → (S, 21, 3), (S, V, 3) or None, metres."""
    data = _load_json(path, "a prediction file [xyz_list, verts_list]")
    if not isinstance(data, list) or len(data) != 2 or not all(isinstance(d, list) for d in data):
        raise ValueError(f"{path}: expected a JSON list [xyz_list, verts_list] (FreiHAND competition format)")
    xyz = np.asarray(data[0], dtype=np.float64)
    verts = np.asarray(data[1], dtype=np.float64) if len(data[1]) else None
    if xyz.ndim != 3 or xyz.shape[1:] != (21, 3):
        raise ValueError(f"{path}: xyz_list must be S × 21 × 3, got shape {xyz.shape}")
    return xyz, verts


def evaluate_files(dataset: str, data: Path, pred: Path) -> dict[str, float]:
    """Metrics of ``pred`` against the ground truth in ``data`` (see the module docstring).

    FreiHAND files hold its 21 keypoints; HO3D files hold HO3D's joint order (``KEYPOINT_CONVENTIONS['ho3d']``),
    in OpenGL axes like its ground truth (the alignments do not depend on the axes).
    """
    from ..hand.tables import KEYPOINT_CONVENTIONS
    from .metrics import evaluate_freihand, evaluate_ho3d

    data = Path(data)
    gt_xyz = np.asarray(_load_json(data / "evaluation_xyz.json", "the ground-truth joints"), dtype=np.float64)
    verts_path = data / "evaluation_verts.json"
    gt_verts = np.asarray(_load_json(verts_path, "the ground-truth vertices"), dtype=np.float64) if verts_path.is_file() else None
    xyz, verts = load_predictions(pred)
    if len(xyz) != len(gt_xyz):
        raise ValueError(f"{pred} has {len(xyz)} samples but the ground truth has {len(gt_xyz)}: "
                         "predict every evaluation image, in order")
    if verts is not None and gt_verts is not None and verts.shape != gt_verts.shape:
        raise ValueError(f"predicted vertices {verts.shape} vs ground truth {gt_verts.shape}: "
                         "the F-score and PA-MPVPE need the MANO topology (778 vertices)")
    if dataset == "freihand":
        return evaluate_freihand(gt_xyz, xyz, gt_verts, verts)
    # HO3D files store the 16 MANO joints then the tips: into the 21-keypoint order the metrics index
    order = list(KEYPOINT_CONVENTIONS["ho3d"].file_to_keypoints)
    return evaluate_ho3d(gt_xyz[:, order], xyz[:, order], gt_verts, verts)


def run(args: argparse.Namespace) -> int:
    try:
        metrics = evaluate_files(args.dataset, args.data, args.pred)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"dahyf eval: {e}", file=sys.stderr)
        return 2
    for k in KEYS + tuple(k for k in metrics if k not in KEYS):
        if k in metrics:
            v = metrics[k]
            print(f"{k:>16s}: {v:.4f}" if isinstance(v, float) else f"{k:>16s}: {v}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, json.dumps(metrics, indent=2))
    return 0
