"""`dahyf predict`: run an image checkpoint over an evaluation split and write the competition file.

    dahyf predict --dataset freihand --data FreiHAND_pub_v2_eval --checkpoint runs/paper/model.npz --mano MANO_DIR --out pred.json
    dahyf predict --dataset ho3d --data HO3D_v3 --checkpoint runs/paper_ho3d/model.npz --mano MANO_DIR --out pred.json

Crops follow the shared policy (``dahyf.capture.crops``) around a detector's box, never the ground
truth: MediaPipe's landmarks on each FreiHAND evaluation image (the capture detector; the whole
image when it finds no hand, counted in the report), HO3D's ``handBoundingBox``.

The files are what the official scripts read, ``[xyz_list, verts_list]`` in metres:

* FreiHAND — 21 keypoints in its order, OpenCV camera axes (as ``evaluation_xyz.json``);
* HO3D — the 16 MANO joints then the 5 tips (``KEYPOINT_CONVENTIONS['ho3d']``), **OpenGL** axes
  (y and z negated: the hand at z < 0, which HO3D's ``pred.py`` checks), 778 MANO vertices.

``--score`` also scores a FreiHAND prediction against ``evaluation_xyz.json`` (``dahyf eval``).
Prediction lives with the dataset readers (``dahyf.train``), so that ``dahyf.eval`` needs nothing
from training.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..fileio import atomic_write_text
from ..hand.tables import KEYPOINT_CONVENTIONS
from .datasets import OPENGL_TO_OPENCV

DATASETS = ("freihand", "ho3d")


def detector_boxes(image_paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Crop boxes from MediaPipe's landmarks (the capture detector), one per image.

    Returns
    -------
    boxes (N, 3) px by the shared crop policy — the whole image where no hand is found — and found (N,) bool.
    """
    import cv2

    from ..capture.crops import hand_boxes
    from ..eval.freihand_images import run_mediapipe

    landmarks = run_mediapipe(list(image_paths))
    boxes, found = [], []
    for path, lm in zip(image_paths, landmarks):
        if lm is None:
            h, w = cv2.imread(str(path)).shape[:2]
            boxes.append(np.array([w / 2, h / 2, max(w, h)], np.float64))
        else:
            boxes.append(hand_boxes(np.asarray(lm, np.float64)[None])[0].astype(np.float64))
        found.append(lm is not None)
    return np.stack(boxes), np.asarray(found)


def predict(checkpoint: Path, dataset, device: str = "auto", batch_size: int = 32,
            hand_model: str = "open") -> tuple[np.ndarray, np.ndarray]:
    """Run a DaHyF image checkpoint over ``dataset`` → keypoints (S, 21, 3), vertices (S, V, 3), m, OpenCV axes.

    ``hand_model`` : 'open' or the MANO folder a checkpoint trained with MANO needs (``--mano DIR``)."""
    import torch
    from torch.utils.data import DataLoader

    from ..net.checkpoint import load_checkpoint

    dev = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    est = load_checkpoint(checkpoint, dev, hand_model=hand_model)
    if not getattr(est, "needs_crops", False):
        raise ValueError(f"{checkpoint} is not an image-network checkpoint (kind 'dahyf'); "
                         "the landmark engine needs MediaPipe landmarks, not dataset crops")
    xyz, verts = [], []
    with torch.inference_mode():
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            o = est.net(batch["image"].to(dev), batch["box"].to(dev), batch["image_size"].to(dev), batch["focal"].to(dev))
            xyz.append(o["joints3d"].float().cpu().numpy())
            verts.append(o["vertices"].float().cpu().numpy())
    return np.concatenate(xyz).astype(np.float64), np.concatenate(verts).astype(np.float64)


def _write_json(path: Path, data) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data))
    return path


def write_freihand(path: Path, xyz: np.ndarray, verts: np.ndarray | None) -> Path:
    """FreiHAND's ``[xyz_list, verts_list]``: (S, 21, 3) m our (= FreiHAND's) order, OpenCV; vertices only
    when they are MANO's 778 (an empty list otherwise: the joint metrics are still scored)."""
    keep = verts is not None and verts.shape[1] == 778
    return _write_json(path, [np.asarray(xyz).tolist(), np.asarray(verts).tolist() if keep else []])


def to_ho3d(xyz: np.ndarray, verts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Our (S, 21, 3) keypoints and (S, V, 3) vertices (m, OpenCV) → HO3D's joint order and OpenGL axes."""
    order = np.argsort(KEYPOINT_CONVENTIONS["ho3d"].file_to_keypoints)  # stored[j] = ours[order[j]]
    return np.asarray(xyz)[:, order] @ OPENGL_TO_OPENCV.T, np.asarray(verts) @ OPENGL_TO_OPENCV.T


def write_ho3d(path: Path, xyz: np.ndarray, verts: np.ndarray) -> Path:
    """HO3D's ``[xyz_list, verts_list]`` (see the module docstring); ``xyz`` must use HO3D's fingertips
    (a checkpoint trained with ``keypoints='ho3d'``) and the vertices MANO's 778."""
    if np.asarray(verts).shape[1:] != (778, 3):
        raise ValueError(f"HO3D scores MANO's 778-vertex meshes: got {np.asarray(verts).shape[1]} vertices per hand; "
                         "train the checkpoint with the real MANO (--mano)")
    j, v = to_ho3d(xyz, verts)
    return _write_json(path, [j.tolist(), v.tolist()])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=DATASETS, default="freihand", help="which evaluation split (default freihand)")
    parser.add_argument("--data", required=True, type=Path, help="FreiHAND_pub_v2(_eval) or HO3D_v2 / HO3D_v3 folder")
    parser.add_argument("--checkpoint", required=True, type=Path, help="a DaHyF image checkpoint (kind 'dahyf')")
    parser.add_argument("--out", required=True, type=Path, help="the prediction file to write (pred.json)")
    parser.add_argument("--mano", metavar="DIR", default="open",
                        help="folder holding MANO_RIGHT.pkl: needed by a checkpoint trained with --mano")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--score", action="store_true", help="FreiHAND: also score against evaluation_xyz.json")


def run(args: argparse.Namespace) -> int:
    from ..errors import DaHyFUserError
    from . import datasets as D

    try:
        if args.dataset == "freihand":
            paths = sorted((args.data / "evaluation" / "rgb").glob("*.jpg"))
            boxes, found = detector_boxes(paths)
            xyz, verts = predict(args.checkpoint, D.FreiHAND(args.data, "evaluation", boxes=boxes), args.device, args.batch_size,
                                 hand_model=args.mano)
            write_freihand(args.out, xyz, verts)
            report = {"pred": str(args.out), "samples": len(xyz), "detected": int(found.sum())}
            if args.score:
                from ..eval.commands import evaluate_files

                report["metrics"] = evaluate_files("freihand", args.data, args.out)
        else:
            from ..net.checkpoint import read_checkpoint

            kp = read_checkpoint(args.checkpoint)["config"].get("keypoints", "model")
            if kp != "ho3d":
                raise ValueError(f"{args.checkpoint} predicts {kp!r} keypoints, HO3D scores its own fingertips: "
                                 "fine-tune it on HO3D (--config paper_ho3d --init CHECKPOINT)")
            xyz, verts = predict(args.checkpoint, D.HO3D(args.data, "evaluation"), args.device, args.batch_size,
                                 hand_model=args.mano)
            write_ho3d(args.out, xyz, verts)
            report = {"pred": str(args.out), "samples": len(xyz)}
    except (DaHyFUserError, FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"dahyf predict: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0
