"""Feature-map fusion of the Global Direction Map (GDM) and its Local (LDM) ablation.

The 2-channel map (x_d, y_d) of ``dahyf.net.encoding`` is repeated to the feature channel count —
channel c carries x_d when c is even and y_d when c is odd — and added to the features with a
learned per-channel gain (initialised to 1): ``F' = F + g ⊙ repeat(D)``.
"""
from __future__ import annotations

import torch
from torch import nn

from .encoding import CROP_SIZE, global_direction_map, local_direction_map

DIRECTION_MAPS = ("none", "gdm", "ldm")


def repeat_to_channels(direction_map: torch.Tensor, channels: int) -> torch.Tensor:
    """(B, 2, h, w) → (B, channels, h, w), channel c = map[c mod 2]."""
    reps = (channels + 1) // 2
    return direction_map.repeat(1, reps, 1, 1)[:, :channels]


def direction_map(kind: str, feature_size: int, boxes: torch.Tensor, image_size: torch.Tensor,
                  focal: torch.Tensor, crop_size: int = CROP_SIZE) -> torch.Tensor:
    """The 2-channel direction map of a square feature map.

    Parameters
    ----------
    kind : 'gdm' (global: P_d = P_g / f) or 'ldm' (crop-local coordinates).
    feature_size : s_f.
    boxes : (B, 3) px, crop (c_x, c_y, s_i) in the image.
    image_size : (B, 2) px, (W, H).
    focal : (B,) px.

    Returns
    -------
    (B, 2, s_f, s_f).
    """
    if kind == "gdm":
        ulc = boxes[:, :2] - boxes[:, 2:3] / 2
        return global_direction_map(feature_size, ulc, boxes[:, 2], image_size, focal, crop_size)
    if kind == "ldm":
        return local_direction_map(feature_size, boxes.shape[0], crop_size, dtype=boxes.dtype, device=boxes.device)
    raise ValueError(f"direction map must be one of {DIRECTION_MAPS[1:]}, got {kind!r}")


class DirectionMapFusion(nn.Module):
    """``F' = F + g ⊙ repeat(D)`` with D the GDM or LDM of the feature map; identity for kind 'none'."""

    def __init__(self, kind: str, channels: int, crop_size: int = CROP_SIZE):
        super().__init__()
        if kind not in DIRECTION_MAPS:
            raise ValueError(f"direction map must be one of {DIRECTION_MAPS}, got {kind!r}")
        self.kind, self.crop_size = kind, crop_size
        self.gain = nn.Parameter(torch.ones(1, channels, 1, 1)) if kind != "none" else None

    def forward(self, features: torch.Tensor, boxes: torch.Tensor, image_size: torch.Tensor,
                focal: torch.Tensor) -> torch.Tensor:
        """features (B, C, s_f, s_f) → (B, C, s_f, s_f)."""
        if self.kind == "none":
            return features
        f = lambda t: t if t.dtype in (torch.float32, torch.float64) else t.float()  # noqa: E731
        d = direction_map(self.kind, features.shape[-1], f(boxes), f(image_size), f(focal), self.crop_size)
        return features + self.gain * repeat_to_channels(d, features.shape[1]).to(features.dtype)
