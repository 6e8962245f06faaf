"""Training and evaluation of the landmark variant of DaHyF on synthetic samples.

``train_landmark(config, out)`` trains :class:`dahyf.net.landmark.LandmarkDaHyF` on samples drawn
on the fly from :class:`dahyf.train.synthetic.SyntheticHands` (deterministic for a seed and a step
count) and writes a checkpoint; ``evaluate_landmark(estimator)`` measures the figures of
``benchmarks/landmark_engine.md`` on fixed-seed held-out sets.

Losses: rotation (squared Frobenius distance of the 16 rotation matrices), root-relative 3-D
keypoints (L1), 2-D reprojection of the full-perspective projection (L1, per crop side), β (L2),
weak camera (L1 on log s and t), and — for the last part of training — the contrastive confidence
loss L_c: L2 between the projection confidence and 1 for landmark sets of a hand, 0 for corrupted ones.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..geometry import hand_size, procrustes_align, project_points
from ..hand import kinematics as K
from ..hand.model import KeypointLayer
from ..net.batch import HandBatch
from ..net.camera import full_to_weak
from ..net.checkpoint import save_checkpoint
from ..net.landmark import LandmarkConfig, LandmarkEstimator, project_and_score
from ..net.modules import LandmarkDaHyF
from . import synthetic as S
from .noise_calibration import landmark_map, load_noise_model, load_rendered_calibration


@dataclass(frozen=True)
class LandmarkTrainConfig:
    """Training recipe (stored in the checkpoint's meta).

    steps : optimiser steps (the run is deterministic for a seed and a step count).
    minutes : wall-clock cap; if hit first the run stops early (then no longer step-deterministic).
    batch : positives per step; neg_frac : corrupted sets per step, as a fraction of batch.
    conf_start : fraction of the steps after which L_c is switched on (the paper: last 100 of 500 epochs).
    neg_weights : sampling weights of (swapped fingers, random points, mirrored hand) negatives.
    """

    seed: int = 0
    steps: int = 7000
    minutes: float = 30.0
    batch: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 200
    neg_frac: float = 0.25
    conf_start: float = 0.5
    neg_weights: tuple = (0.45, 0.45, 0.10)
    w_rot: float = 1.0
    w_orient: float = 1.0
    w_j3d: float = 1.0
    w_2d: float = 1.0
    w_betas: float = 0.01
    w_cam: float = 0.5
    w_conf: float = 1.0
    threads: int = 1


def pa_mpjpe(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Procrustes-aligned mean per-joint error (FreiHAND's alignment), (B, N, 3) m → (B,) m."""
    g = gt.detach().cpu().double().numpy()
    aligned = procrustes_align(g, pred.detach().cpu().double().numpy())
    return torch.from_numpy(np.linalg.norm(aligned - g, axis=-1).mean(-1))


def rr_mpjpe(pred: torch.Tensor, gt: torch.Tensor, root: int = 0) -> torch.Tensor:
    """Root-relative (wrist) mean per-joint error, (B, N, 3) m → (B,) m."""
    return ((pred - pred[:, root:root + 1]) - (gt - gt[:, root:root + 1])).norm(dim=-1).mean(-1)


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Area under the ROC curve of scores (positives should score higher), ties counted half."""
    pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    scores = np.concatenate([pos, neg])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    _, inv, counts = np.unique(scores, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    ranks = (sums / counts)[inv]
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------
class LandmarkLoss:
    """The training losses for one batch (see the module docstring). Returns (total, parts dict)."""

    def __init__(self, keypoints: KeypointLayer, cfg: LandmarkTrainConfig):
        self.kp = keypoints
        self.cfg = cfg

    def positives(self, net: LandmarkDaHyF, b: S.SyntheticBatch, with_conf: bool):
        cfg = self.cfg
        out = project_and_score(net(b.landmarks, b.image_size, b.focal, b.world, b.world_present), self.kp,
                                b.image_size, b.focal, net.config.crop_size)
        R_gt = K.batch_rodrigues(b.pose.reshape(-1, 3)).reshape(-1, 16, 3, 3)
        l_rot = ((out["rotmats"] - R_gt) ** 2).sum((-1, -2)).mean()
        l_orient = ((out["rotmats"][:, 0] - R_gt[:, 0]) ** 2).sum((-1, -2)).mean()
        kp_pred = out["joints3d"] - out["transl"][:, None]
        kp_gt = b.joints3d - b.transl[:, None]
        l_j3d = 100 * ((kp_pred - kp_pred[:, :1]) - (kp_gt - kp_gt[:, :1])).abs().mean()
        side = out["crop_side"][:, None, None]
        l_2d = 10 * ((out["joints2d_proj"] - b.landmarks_clean).abs() / side).mean()
        l_betas = ((out["betas"] - b.betas) ** 2).mean()
        weak_gt = full_to_weak(b.transl, out["crop_centre"], out["crop_side"], b.image_size, b.focal)
        l_cam = (torch.log(out["weak_cam"][:, 0]) - torch.log(weak_gt[:, 0])).abs().mean() \
            + 10 * (out["weak_cam"][:, 1:] - weak_gt[:, 1:]).abs().mean()
        parts = {"rot": l_rot, "orient": l_orient, "j3d": l_j3d, "2d": l_2d, "betas": l_betas, "cam": l_cam}
        total = cfg.w_rot * l_rot + cfg.w_orient * l_orient + cfg.w_j3d * l_j3d + cfg.w_2d * l_2d + cfg.w_betas * l_betas + cfg.w_cam * l_cam
        if with_conf:
            l_c = ((out["confidence"] - 1) ** 2).mean()
            parts["conf_pos"] = l_c
            total = total + cfg.w_conf * l_c
        return total, parts

    def negatives(self, net: LandmarkDaHyF, lm: torch.Tensor, b: S.SyntheticBatch):
        out = project_and_score(net(lm, b.image_size, b.focal, b.world, b.world_present), self.kp, b.image_size,
                                b.focal, net.config.crop_size)
        l_c = (out["confidence"] ** 2).mean()
        return self.cfg.w_conf * l_c, {"conf_neg": l_c}


def _negative_landmarks(g: torch.Generator, lm: torch.Tensor, weights) -> torch.Tensor:
    """Corrupt each landmark set with a kind drawn by ``weights`` over S.CORRUPTIONS."""
    kinds = torch.multinomial(torch.tensor(weights, dtype=torch.float32), lm.shape[0], replacement=True, generator=g)
    out = lm.clone()
    for i, kind in enumerate(S.CORRUPTIONS):
        sel = kinds == i
        if sel.any():
            out[sel] = S.corrupt_landmarks(g, lm[sel], kind)
    return out


def _learning_rate(cfg: LandmarkTrainConfig, step: int) -> float:
    """Linear warm-up, then a cosine decay to 1 % of ``cfg.lr``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))


def _new_network(net_config: LandmarkConfig, noise: dict | None, hand_model, rendered: dict | None):
    """The sampler, the keypoint layer and the untrained network (with the landmark map, when its
    config carries one) of a training run."""
    from ..hand.model import load_hand_model

    noise = noise if noise is not None else load_noise_model()
    if rendered is None and (net_config.world or net_config.landmark_map):
        rendered = load_rendered_calibration()
    hand_model = hand_model if hand_model is not None else load_hand_model(net_config.hand_model, "right")
    sampler = S.SyntheticHands(hand_model, noise, rendered["world"] if net_config.world else None)
    net = LandmarkDaHyF(net_config)
    if net_config.landmark_map:
        with torch.no_grad():
            net.landmark_map.copy_(torch.as_tensor(landmark_map(rendered), dtype=torch.float32))
    return sampler, hand_model.keypoint_layer(), net


def train_landmark(cfg: LandmarkTrainConfig, out: str | Path | None, net_config: LandmarkConfig = LandmarkConfig(),
                   log=print, noise: dict | None = None, hand_model=None,
                   rendered: dict | None = None) -> tuple[LandmarkDaHyF, dict]:
    """Train the landmark network; write a 'landmark' checkpoint to ``out`` (unless None).

    ``noise``: the 2-D landmark noise (default ``landmark_noise.json``); ``rendered``: the landmark
    map and world-landmark noise (default ``landmark_rendered.json``), used when ``net_config``
    asks for world landmarks or the landmark map.

    Returns
    -------
    (net, meta) where meta records the recipe, steps done, time and final losses.
    """
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    sampler, kp_layer, net = _new_network(net_config, noise, hand_model, rendered)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    lr_at = lambda step: _learning_rate(cfg, step)   # noqa: E731

    loss = LandmarkLoss(kp_layer, cfg)
    g = torch.Generator().manual_seed(cfg.seed)
    n_neg = int(round(cfg.batch * cfg.neg_frac))
    start = time.time()
    conf_step = int(cfg.conf_start * cfg.steps)
    running: dict[str, float] = {}
    step = 0
    truncated = False
    net.train()
    for step in range(cfg.steps):
        if time.time() - start > cfg.minutes * 60:
            truncated = True
            log(f"time cap of {cfg.minutes} min reached at step {step}/{cfg.steps}; stopping")
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        b = sampler.sample(g, cfg.batch)
        with_conf = step >= conf_step
        total, parts = loss.positives(net, b, with_conf)
        if with_conf and n_neg > 0:
            neg_lm = _negative_landmarks(g, b.landmarks[:n_neg], cfg.neg_weights)
            sub = b.rows(slice(None, n_neg))
            l_neg, p_neg = loss.negatives(net, neg_lm, sub)
            total = total + l_neg
            parts.update(p_neg)
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        for k, v in parts.items():
            v = float(v.detach())
            running[k] = 0.98 * running.get(k, v) + 0.02 * v
        if step % 250 == 0 or step == cfg.steps - 1:
            log(f"step {step:5d}  {time.time() - start:6.0f}s  lr {lr_at(step):.2e}  "
                + "  ".join(f"{k} {v:.4f}" for k, v in running.items()))
    net.eval()
    meta = {
        "trainer": "dahyf.train.landmark_trainer",
        "recipe": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        "steps_done": step + (0 if truncated else 1),
        "truncated": truncated,
        "seconds": round(time.time() - start, 1),
        "final_losses": {k: round(v, 5) for k, v in running.items()},
        "noise_model": "engine/assets/landmark_noise.json",
        "rendered_calibration": ("engine/assets/landmark_rendered.json"
                                 if (net_config.world or net_config.landmark_map) else None),
        "torch": str(torch.__version__),
    }
    if out is not None:
        save_checkpoint(out, "landmark", net_config.to_dict(), net.state_dict(), meta)
        log(f"wrote {out}")
    return net, meta


# ----------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------
#: Seeds of the held-out sets (never used for training: training seeds draw from their own generator).
EVAL_SEED = 20261130


def as_mediapipe_inputs(est: LandmarkEstimator, landmarks, world=None, present=None):
    """Synthetic keypoints (model convention) as the estimator receives MediaPipe's: through its
    landmark map when it has one; absent world rows as NaN. Returns numpy (landmarks, world or None)."""
    from ..net.landmark_inputs import apply_landmark_map

    lm = np.asarray(landmarks, np.float64)
    w = None if world is None else np.asarray(world, np.float64).copy()
    if w is not None and present is not None:
        w[~np.asarray(present, bool)] = np.nan
    if est.config.landmark_map:
        m = np.asarray(est.weights["landmark_map"], np.float64)
        lm = apply_landmark_map(lm, m)
        w = None if w is None else apply_landmark_map(w, m)
    return lm.astype(np.float32), None if w is None else w.astype(np.float32)


def _predict_batched(est: LandmarkEstimator, lm, size, focal, world=None, present=None, chunk=1024):
    """The estimator's outputs for right hands (keypoints in the model's convention), as CPU tensors."""
    from ..backend import to_numpy

    lm, world = as_mediapipe_inputs(est, lm, world, present)
    outs = []
    for i in range(0, lm.shape[0], chunk):
        sl = slice(i, i + chunk)
        outs.append(est.predict(HandBatch.of(lm[sl], np.ones(lm[sl].shape[0], bool), size[sl], focal[sl],
                                             world_landmarks=None if world is None else world[sl])))
    return {k: torch.from_numpy(np.concatenate([to_numpy(o[k]) for o in outs])) for k in outs[0]}


def _pose_metrics(est, b: S.SyntheticBatch) -> dict:
    p = _predict_batched(est, b.landmarks, b.image_size, b.focal, b.world, b.world_present)
    pa = pa_mpjpe(p["joints3d"], b.joints3d) * 1000
    rr = rr_mpjpe(p["joints3d"], b.joints3d) * 1000
    ang = S.K.batch_rodrigues(p["pose"][:, 0]), S.K.batch_rodrigues(b.pose[:, 0])
    from ..net.regressor import rotation_distance

    orient = torch.rad2deg(rotation_distance(*ang))
    side = hand_size(b.landmarks)
    reproj = ((p["joints2d_proj"] - b.landmarks).norm(dim=-1).median(-1).values / side)
    depth_rel = ((p["transl"][:, 2] - b.transl[:, 2]).abs() / b.transl[:, 2])
    return {
        "pa_mpjpe_mm": round(float(pa.mean()), 2),
        "rr_mpjpe_mm": round(float(rr.mean()), 2),
        "orient_err_median_deg": round(float(orient.median()), 2),
        "orient_err_mean_deg": round(float(orient.mean()), 2),
        "reproj_median_per_hand_size": round(float(reproj.median()), 4),
        "depth_rel_err_median": round(float(depth_rel.median()), 4),
        "n": int(b.pose.shape[0]),
    }


def sample_offcentre_wide(sampler: S.SyntheticHands, g: torch.Generator, n: int) -> S.SyntheticBatch:
    """Held-out set for the GDM vs LDM ablation: hands near the frame's edges in wide-angle 16:9 images.

    Focal length 0.55–0.7 × the image diagonal (≈ 70–80° horizontal field of view), the hand centroid
    within 6–22 % of a side of the frame (left/right or top/bottom at random), calibrated noise.
    """
    old = (S.IMAGE_SIZES, S.FOCAL_RANGE)
    try:
        S.IMAGE_SIZES, S.FOCAL_RANGE = ((1280, 720), (1920, 1080)), (0.55, 0.7)
        b = sampler.sample(g, n, position_range=(0.06, 0.22))
    finally:
        S.IMAGE_SIZES, S.FOCAL_RANGE = old
    # reflect about the image centre at random so that hands sit at every edge / corner
    flip = torch.rand(n, 2, generator=g) < 0.5
    return _reflect_batch(sampler, b, flip)


def _reflect_batch(sampler, b: S.SyntheticBatch, flip: torch.Tensor) -> S.SyntheticBatch:
    """Move each hand to the mirrored image position by re-placing its translation (pose unchanged)."""
    with torch.no_grad():
        kp = b.joints3d - b.transl[:, None]
        c = kp.mean(1)
        ray_pt = b.transl + c  # centroid in camera
        sign = torch.where(flip, -1.0, 1.0)
        new_c = torch.cat([ray_pt[:, :2] * sign, ray_pt[:, 2:]], -1)
        transl = new_c - c
        joints3d = kp + transl[:, None]
        clean = project_points(joints3d, b.focal, b.image_size)
        shift = clean - b.landmarks_clean
        return S.SyntheticBatch(b.pose, b.betas, transl, joints3d, clean, b.landmarks + shift, b.image_size, b.focal,
                                b.world, b.world_present)


def _confidence_metrics(est, sampler, g, n) -> dict:
    b = sampler.sample(g, n)
    pos = _predict_batched(est, b.landmarks, b.image_size, b.focal, b.world, b.world_present)["confidence"].numpy()
    res = {"confidence_median_pos": round(float(np.median(pos)), 4)}
    negs = []
    for kind in S.CORRUPTIONS:
        lm = S.corrupt_landmarks(g, b.landmarks, kind)
        neg = _predict_batched(est, lm, b.image_size, b.focal, b.world, b.world_present)["confidence"].numpy()
        negs.append(neg)
        res[f"auroc_{kind}"] = round(auroc(pos, neg), 4)
        res[f"confidence_median_{kind}"] = round(float(np.median(neg)), 4)
    res["auroc_all"] = round(auroc(pos, np.concatenate(negs)), 4)
    res["auroc_swapped_or_random"] = round(auroc(pos, np.concatenate(negs[:2])), 4)
    return res


def evaluate_landmark(est: LandmarkEstimator, n: int = 2000, seed: int = EVAL_SEED, noise: dict | None = None,
                      sets: tuple[str, ...] = ("heldout", "hard", "clean", "offcentre_wide", "confidence")) -> dict:
    """The figures of benchmarks/landmark_engine.md on fixed-seed synthetic held-out sets.

    heldout: the training distribution with the calibrated noise (difficulty 0.2–1.0 × measured);
    hard: all noise at the measured FreiHAND level (difficulty 1.0); clean: no landmark noise;
    offcentre_wide: :func:`sample_offcentre_wide`; confidence: AUROC of correct vs corrupted sets.
    """
    from ..hand.model import load_hand_model

    noise = noise if noise is not None else load_noise_model()
    world = load_rendered_calibration()["world"] if est.config.world else None
    sampler = S.SyntheticHands(load_hand_model(est.hand_model_name, "right"), noise, world)
    res = {}
    for k, name in enumerate(sets):
        g = torch.Generator().manual_seed(seed + k)
        if name == "heldout":
            res[name] = _pose_metrics(est, sampler.sample(g, n))
        elif name == "hard":
            res[name] = _pose_metrics(est, sampler.sample(g, n, difficulty=torch.ones(n)))
        elif name == "clean":
            b = sampler.sample(g, n)
            res[name] = _pose_metrics(est, replace(b, landmarks=b.landmarks_clean))
        elif name == "offcentre_wide":
            res[name] = _pose_metrics(est, sample_offcentre_wide(sampler, g, n))
        elif name == "confidence":
            res[name] = _confidence_metrics(est, sampler, g, n)
        else:
            raise ValueError(f"unknown evaluation set {name!r}")
    return res


# ----------------------------------------------------------------------------------------------
# CLI (wired by dahyf.train.commands)
# ----------------------------------------------------------------------------------------------
def add_train_arguments(p) -> None:
    d = LandmarkTrainConfig()
    p.add_argument("--out", required=True, help="checkpoint to write (.npz)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--steps", type=int, default=d.steps, help=f"optimiser steps (default {d.steps})")
    p.add_argument("--minutes", type=float, default=d.minutes, help="wall-clock cap; stops early if reached")
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--width", type=int, default=LandmarkConfig().width, help="MLP width")
    p.add_argument("--depth", type=int, default=LandmarkConfig().depth, help="MLP residual blocks")
    p.add_argument("--direction", choices=("global", "local"), default="global",
                   help="joint direction code: global (GDM, default) or local (LDM ablation)")
    p.add_argument("--refine", action=argparse.BooleanOptionalAction, default=True,
                   help="store in the checkpoint that the translation is refined at run time (default on)")
    p.add_argument("--world", action=argparse.BooleanOptionalAction, default=False,
                   help="the network also reads MediaPipe's world landmarks (default off: measured worse on real video)")
    p.add_argument("--landmark-map", action=argparse.BooleanOptionalAction, default=True,
                   help="carry the measured MediaPipe → model keypoint map and apply its inverse to the inputs (default on)")
    p.add_argument("--eval", action="store_true", help="evaluate the result and store the figures in the checkpoint")


def run_train(args) -> int:
    cfg = LandmarkTrainConfig(seed=args.seed, steps=args.steps, minutes=args.minutes, batch=args.batch)
    net_cfg = LandmarkConfig(direction=args.direction, width=args.width, depth=args.depth, world=args.world,
                             landmark_map=args.landmark_map)
    net, meta = train_landmark(cfg, None, net_cfg)
    meta["refine"] = bool(args.refine)
    if args.eval:
        est = LandmarkEstimator.from_module(net, refine=meta["refine"], meta=meta)
        meta["eval"] = evaluate_landmark(est)
        print(json.dumps(meta["eval"], indent=1))
    save_checkpoint(args.out, "landmark", net_cfg.to_dict(), net.state_dict(), meta)
    print(f"wrote {args.out}")
    return 0


def add_eval_arguments(p) -> None:
    p.add_argument("--checkpoint", default=None, help="landmark checkpoint (default: the bundled engine)")
    p.add_argument("--n", type=int, default=2000, help="samples per held-out set")
    p.add_argument("--refine", choices=("auto", "on", "off"), default="auto",
                   help="translation refinement: as stored in the checkpoint (auto), or forced")
    p.add_argument("--refine-pose", choices=("auto", "on", "off"), default="auto",
                   help="per-frame fit of θ and translation to the landmarks (dahyf.net.refine): "
                        "the checkpoint's / estimator's default (auto), or forced")
    p.add_argument("--sets", default="heldout,hard,clean,offcentre_wide,confidence")
    p.add_argument("--json", action="store_true", help="print JSON only")


def run_eval(args) -> int:
    from ..net.checkpoint import load_checkpoint

    torch.set_num_threads(2)
    est = load_checkpoint(args.checkpoint)
    if args.refine != "auto":
        est.refine = args.refine == "on"
    if args.refine_pose != "auto":
        est.refine_pose = args.refine_pose == "on"
    res = evaluate_landmark(est, n=args.n, sets=tuple(s for s in args.sets.split(",") if s))
    res["checkpoint"] = str(args.checkpoint or "bundled default")
    res["refine"] = est.refine
    res["refine_pose"] = getattr(est, "refine_pose", False)
    if args.json:
        print(json.dumps(res))
    else:
        print(json.dumps(res, indent=1))
    return 0
