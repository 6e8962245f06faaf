"""SJCP: SimCC joint coordinate prediction — label codec, head and KL loss.

The codec follows the SimCC idea (Li et al., ECCV 2022; the same API shape as mmpose's
``SimCCLabel``): each image coordinate x ∈ [0, s_p) px is represented by ``n = s_p · s`` bins
(s: split ratio, 3 in DaHyF → 672 bins for a 224 crop). Bin ``i`` stands for the coordinate
``i / s`` px. A label is a Gaussian centred on ``x · s`` (σ in px, times s in bins), normalised to
a probability distribution; the prediction is decoded by soft-argmax (expected bin) divided by s.

``simcc_encode`` / ``simcc_decode`` are pure functions that take numpy arrays or torch tensors
and return the same kind; ``SimCCHead`` and ``simcc_kl_loss`` are the trainable parts.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..constants import CROP_SIZE

#: DaHyF defaults (DESIGN.md §3): crop side s_p (CROP_SIZE, 224 px), split ratio s = 3 → 672 bins.
SPLIT_RATIO = 3.0
#: Label Gaussian σ in crop pixels (→ σ · s bins).
SIGMA_PX = 2.0


def at_least_float32(t: torch.Tensor) -> torch.Tensor:
    """float16 / bfloat16 (AMP) and integer tensors → float32; float32 / float64 unchanged."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def weighted_joint_mean(err: torch.Tensor, weights: torch.Tensor | None = None,
                        denominator: float | None = None) -> torch.Tensor:
    """The weighted mean of per-keypoint losses, the reduction of the 2-D losses (SimCC KL, heatmap L2).

    err : (B, K); weights : (B,) per sample or (B, K) per keypoint, default 1; denominator : what the
    weighted sum is divided by (default: the sum of the weights, at least 1). Returns ().
    """
    if weights is None:
        return err.mean()
    w = at_least_float32(weights)
    if w.dim() == 1:
        w = w[:, None].expand_as(err)
    return (err * w).sum() / (w.sum().clamp_min(1.0) if denominator is None else max(denominator, 1))


def num_bins(crop_size: int = CROP_SIZE, split_ratio: float = SPLIT_RATIO) -> int:
    """Number of SimCC bins per axis, ``int(crop_size · split_ratio)`` (672 for DaHyF)."""
    return int(round(crop_size * split_ratio))


def _as_tensor(x):
    if isinstance(x, torch.Tensor):
        return x, False
    return torch.as_tensor(np.asarray(x, dtype=np.float64)), True


def simcc_encode(keypoints, crop_size: int | tuple[int, int] = CROP_SIZE, split_ratio: float = SPLIT_RATIO,
                 sigma: float | tuple[float, float] = SIGMA_PX):
    """Encode 2-D keypoints as Gaussian-smoothed 1-D SimCC labels.

    Parameters
    ----------
    keypoints : (..., K, 2) px, (x, y) in the crop, 0 ≤ x < crop width.
    crop_size : crop side in px, or (width, height).
    split_ratio : bins per pixel, s.
    sigma : Gaussian standard deviation in px, one value or (σ_x, σ_y).

    Returns
    -------
    labels_x : (..., K, W·s) probability over the x bins (sums to 1).
    labels_y : (..., K, H·s) probability over the y bins.
    Same array kind (numpy / torch) as ``keypoints``.
    """
    kp, was_numpy = _as_tensor(keypoints)
    if kp.shape[-1] != 2:
        raise ValueError(f"keypoints must have shape (..., K, 2), got {tuple(kp.shape)}")
    w, h = (crop_size, crop_size) if np.isscalar(crop_size) else crop_size
    sx, sy = (sigma, sigma) if np.isscalar(sigma) else sigma
    out = []
    for axis, (size, sig) in enumerate(((w, sx), (h, sy))):
        n = num_bins(size, split_ratio)
        bins = torch.arange(n, dtype=kp.dtype, device=kp.device)
        mu = kp[..., axis : axis + 1] * split_ratio
        logits = -((bins - mu) ** 2) / (2.0 * (sig * split_ratio) ** 2)
        out.append(torch.softmax(logits, dim=-1))
    if was_numpy:
        return out[0].numpy(), out[1].numpy()
    return out[0], out[1]


def simcc_decode(simcc_x, simcc_y, split_ratio: float = SPLIT_RATIO, beta: float = 1.0, log_space: bool = True):
    """Decode SimCC vectors to 2-D keypoints by soft-argmax.

    Parameters
    ----------
    simcc_x : (..., K, Wx) logits over the x bins (or probabilities when ``log_space=False``).
    simcc_y : (..., K, Wy) the same for y.
    split_ratio : bins per pixel, s.
    beta : softmax temperature multiplier applied to logits.
    log_space : True when the inputs are logits (network output); False for probabilities (labels).

    Returns
    -------
    keypoints : (..., K, 2) px in the crop, ``E[bin] / s``.
    scores : (..., K) confidence, the smaller of the two peak probabilities.
    """
    x, was_numpy = _as_tensor(simcc_x)
    y, _ = _as_tensor(simcc_y)
    coords, peaks = [], []
    for v in (x, y):
        if log_space:
            p = torch.softmax(v * beta, dim=-1)
        else:
            p = v / v.sum(dim=-1, keepdim=True).clamp_min(1e-12)
        bins = torch.arange(v.shape[-1], dtype=p.dtype, device=p.device)
        coords.append((p * bins).sum(-1) / split_ratio)
        peaks.append(p.amax(-1))
    kp = torch.stack(coords, dim=-1)
    scores = torch.minimum(peaks[0], peaks[1])
    if was_numpy:
        return kp.numpy(), scores.numpy()
    return kp, scores


def simcc_kl_loss(pred_x: torch.Tensor, pred_y: torch.Tensor, labels_x: torch.Tensor, labels_y: torch.Tensor,
                  weights: torch.Tensor | None = None, beta: float = 1.0, denominator: float | None = None) -> torch.Tensor:
    """KL divergence between SimCC labels and predicted distributions (SJCP's L_2d).

    Parameters
    ----------
    pred_x, pred_y : (B, K, n) logits.
    labels_x, labels_y : (B, K, n) target probabilities (from ``simcc_encode``).
    weights : (B, K) or (B,) per-keypoint / per-sample weights (e.g. visibility, is-hand), default 1.
    beta : softmax temperature multiplier.
    denominator : what the weighted sum is divided by (default: the sum of the weights).

    Returns
    -------
    () mean KL per keypoint and axis (nats).
    """
    total = 0.0
    for p, t in ((pred_x, labels_x), (pred_y, labels_y)):
        logq = F.log_softmax(at_least_float32(p) * beta, dim=-1)
        t = at_least_float32(t).to(logq.dtype)
        kl = (t * (torch.log(t.clamp_min(1e-12)) - logq)).sum(-1)  # (B, K)
        total = total + kl
    return weighted_joint_mean(total / 2.0, weights, denominator)


class SimCCHead(nn.Module):
    """Two 1-D classifiers per joint on the joint feature maps F_k ∈ R^{K×h×w}.

    Parameters
    ----------
    in_channels : channels of the (fused) fine feature map.
    num_joints : K (21).
    feature_size : h = w of the feature map (56 for a 224 crop at stride 4).
    crop_size, split_ratio : define the number of bins (672).
    """

    def __init__(self, in_channels: int, num_joints: int = 21, feature_size: int = 56,
                 crop_size: int = CROP_SIZE, split_ratio: float = SPLIT_RATIO):
        super().__init__()
        self.split_ratio = split_ratio
        self.joint_maps = nn.Conv2d(in_channels, num_joints, kernel_size=1)  # → F_k
        n = num_bins(crop_size, split_ratio)
        self.cls_x = nn.Linear(feature_size * feature_size, n)
        self.cls_y = nn.Linear(feature_size * feature_size, n)

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """features (B, C, h, w) → dict(simcc_x (B,K,n), simcc_y (B,K,n), joints2d (B,K,2) crop px, joint_maps (B,K,h,w))."""
        fk = self.joint_maps(features)
        flat = fk.flatten(2)
        sx, sy = self.cls_x(flat), self.cls_y(flat)
        kp, _ = simcc_decode(at_least_float32(sx), at_least_float32(sy), self.split_ratio)
        return {"simcc_x": sx, "simcc_y": sy, "joints2d": kp, "joint_maps": fk}
