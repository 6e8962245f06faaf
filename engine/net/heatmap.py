"""2-D heatmap joint head: the ablation baseline that SJCP replaces in the paper's Table 4.

The classic heatmap regression (SimpleBaseline, Xiao et al., ECCV 2018): one Gaussian heatmap per
joint on the stride-4 grid (σ = 2 cells), an L2 (mean squared error) loss on the maps, and the
joint read off as the **arg-max cell** — quantised to the grid (a cell is s_p / h = 4 crop px).
That quantisation is the error the paper attributes to heatmaps and removes with SimCC's sub-pixel
bins; a soft-arg-max decoder would remove it too and is therefore not used here.

Cell (i, j) of an ``h × w`` heatmap over an ``s_p`` crop stands for the crop pixel
``(j · sc_p + sc_p / 2, i · sc_p + sc_p / 2)`` with ``sc_p = s_p / w`` — the same cell-centre
convention as the direction maps.
"""
from __future__ import annotations

import torch
from torch import nn

from ..constants import CROP_SIZE
from .simcc import at_least_float32, weighted_joint_mean

#: Gaussian σ of the targets, in heatmap cells (SimpleBaseline's 2).
SIGMA_CELLS = 2.0


def cell_centres(size: int, crop_size: int = CROP_SIZE, dtype=torch.float32, device=None) -> torch.Tensor:
    """(size,) px, the crop coordinate each of ``size`` cells stands for (``k·sc_p + sc_p/2``)."""
    sc_p = crop_size / size
    return torch.arange(size, dtype=dtype, device=device) * sc_p + sc_p / 2


def heatmap_encode(keypoints: torch.Tensor, size: int = 56, crop_size: int = CROP_SIZE,
                   sigma_cells: float = SIGMA_CELLS) -> torch.Tensor:
    """Gaussian heatmaps (peak 1) for crop-pixel keypoints.

    keypoints : (B, K, 2) px in the crop. Returns (B, K, size, size).
    """
    c = cell_centres(size, crop_size, keypoints.dtype, keypoints.device)
    sigma_px = sigma_cells * crop_size / size
    gx = torch.exp(-((c - keypoints[..., 0:1]) ** 2) / (2 * sigma_px**2))  # (B,K,w)
    gy = torch.exp(-((c - keypoints[..., 1:2]) ** 2) / (2 * sigma_px**2))  # (B,K,h)
    return gy[..., :, None] * gx[..., None, :]


def heatmap_decode(heatmaps: torch.Tensor, crop_size: int = CROP_SIZE) -> torch.Tensor:
    """Arg-max cell of each (B, K, h, w) heatmap → (B, K, 2) crop px (the cell centre; no gradient)."""
    B, K, h, w = heatmaps.shape
    idx = at_least_float32(heatmaps).detach().flatten(2).argmax(-1)  # (B, K)
    cx = cell_centres(w, crop_size, torch.float32, heatmaps.device)
    cy = cell_centres(h, crop_size, torch.float32, heatmaps.device)
    return torch.stack([cx[idx % w], cy[idx // w]], dim=-1)


def heatmap_loss(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None,
                 denominator: float | None = None) -> torch.Tensor:
    """Mean squared error between predicted and target heatmaps, mean over cells and joints.

    pred, target : (B, K, h, w); weights : (B,) or (B, K); denominator : what the weighted sum of the
    per-map errors is divided by (default: the sum of the weights). Returns ().
    """
    err = ((at_least_float32(pred) - at_least_float32(target)) ** 2).flatten(2).mean(-1)  # (B, K)
    return weighted_joint_mean(err, weights, denominator)


class HeatmapHead(nn.Module):
    """1×1 convolution from the fused fine features to K heatmaps, decoded by arg-max."""

    def __init__(self, in_channels: int, num_joints: int = 21, crop_size: int = CROP_SIZE):
        super().__init__()
        self.crop_size = crop_size
        self.joint_maps = nn.Conv2d(in_channels, num_joints, kernel_size=1)

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """features (B, C, h, w) → dict(heatmaps (B,K,h,w), joints2d (B,K,2) crop px)."""
        hm = self.joint_maps(features)
        return {"heatmaps": hm, "joints2d": heatmap_decode(hm, self.crop_size)}
