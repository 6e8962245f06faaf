"""2-D heatmap joint head (the ablation alternative to SJCP in the paper's Table 4).

Cell (i, j) of an ``h × w`` heatmap over an ``s_p`` crop stands for the crop pixel
``(j · sc_p + sc_p / 2, i · sc_p + sc_p / 2)`` with ``sc_p = s_p / w`` — the same cell-centre
convention as the direction maps. Targets are Gaussians; the head's output is read as spatial
logits: the loss is the KL divergence from the normalised target to the spatial softmax, and the
decoder is the soft-argmax of that softmax (integral regression), so training and decoding agree.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .simcc import CROP_SIZE, at_least_float32


def cell_centres(size: int, crop_size: int = CROP_SIZE, dtype=torch.float32, device=None) -> torch.Tensor:
    """(size,) px, the crop coordinate each of ``size`` cells stands for (``k·sc_p + sc_p/2``)."""
    sc_p = crop_size / size
    return torch.arange(size, dtype=dtype, device=device) * sc_p + sc_p / 2


def heatmap_encode(keypoints: torch.Tensor, size: int = 56, crop_size: int = CROP_SIZE, sigma_px: float = 4.0) -> torch.Tensor:
    """Gaussian heatmaps (peak 1) for crop-pixel keypoints.

    keypoints : (B, K, 2) px in the crop. Returns (B, K, size, size).
    """
    c = cell_centres(size, crop_size, keypoints.dtype, keypoints.device)
    gx = torch.exp(-((c - keypoints[..., 0:1]) ** 2) / (2 * sigma_px**2))  # (B,K,w)
    gy = torch.exp(-((c - keypoints[..., 1:2]) ** 2) / (2 * sigma_px**2))  # (B,K,h)
    return gy[..., :, None] * gx[..., None, :]


def heatmap_decode(heatmaps: torch.Tensor, crop_size: int = CROP_SIZE, beta: float = 1.0) -> torch.Tensor:
    """Soft-argmax of (B, K, h, w) heatmap logits → (B, K, 2) crop px."""
    B, K, h, w = heatmaps.shape
    p = torch.softmax(at_least_float32(heatmaps).flatten(2) * beta, dim=-1).view(B, K, h, w)
    cx = cell_centres(w, crop_size, p.dtype, p.device)
    cy = cell_centres(h, crop_size, p.dtype, p.device)
    x = (p.sum(2) * cx).sum(-1)
    y = (p.sum(3) * cy).sum(-1)
    return torch.stack([x, y], dim=-1)


def heatmap_loss(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """KL(target ‖ softmax(pred)) over each (h, w) map, mean over joints.

    pred : (B, K, h, w) logits; target : (B, K, h, w) non-negative (from ``heatmap_encode``);
    weights : (B,) or (B, K). Returns () nats.
    """
    t = at_least_float32(target).flatten(2)
    t = t / t.sum(-1, keepdim=True).clamp_min(1e-12)
    logq = F.log_softmax(at_least_float32(pred).flatten(2), dim=-1)
    t = t.to(logq.dtype)
    err = (t * (torch.log(t.clamp_min(1e-12)) - logq)).sum(-1)  # (B,K)
    if weights is None:
        return err.mean()
    w = at_least_float32(weights)
    if w.dim() == 1:
        w = w[:, None].expand_as(err)
    return (err * w).sum() / w.sum().clamp_min(1.0)


class HeatmapHead(nn.Module):
    """1×1 convolution from the fused fine features to K heatmaps, decoded by soft-argmax."""

    def __init__(self, in_channels: int, num_joints: int = 21, crop_size: int = CROP_SIZE):
        super().__init__()
        self.crop_size = crop_size
        self.joint_maps = nn.Conv2d(in_channels, num_joints, kernel_size=1)

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """features (B, C, h, w) → dict(heatmaps (B,K,h,w) logits, joints2d (B,K,2) crop px)."""
        hm = self.joint_maps(features)
        return {"heatmaps": hm, "joints2d": heatmap_decode(hm, self.crop_size)}
