"""The Global Direction Map (GDM), its Local (LDM) ablation, and the convolution stage they condition.

The 2-channel map of a feature map (one value pair per cell) is repeated to the feature channel
count — channel c carries x when c is even and y when c is odd — and **concatenated** with the
features; the convolution stage that follows (3×3 conv, GroupNorm, ReLU, ×n) reads both:

    F' = stage([reduce(F) ; repeat(D, C)])

so every cell's features are combined with where that cell looks in the full image (GDM) or where it
sits in the crop (LDM). The ``'none'`` rows run the same stage on ``reduce(F)`` alone.

* GDM: ``P_d = P_g / f`` with ``P_g = P_l · s_i/s_p + P_ulc − O`` (``dahyf.net.encoding``).
* LDM: ``P_l / s_p`` — the cell's crop position with the origin at the crop's upper-left corner, in
  crop sides (0 … 1).
"""
from __future__ import annotations

import torch
from torch import nn

from ..constants import CROP_SIZE
from .encoding import feature_locations, global_direction_map

DIRECTION_MAPS = ("none", "gdm", "ldm")


def repeat_to_channels(direction_map: torch.Tensor, channels: int) -> torch.Tensor:
    """(B, 2, h, w) → (B, channels, h, w), channel c = map[c mod 2]."""
    reps = (channels + 1) // 2
    return direction_map.repeat(1, reps, 1, 1)[:, :channels]


def local_direction_map(feature_size: int, batch: int, crop_size: int = CROP_SIZE, dtype=torch.float32,
                        device=None) -> torch.Tensor:
    """The LDM: each cell centre's crop position over the crop side, origin at the upper-left corner.

    Returns
    -------
    (batch, 2, s_f, s_f), channels (x, y) in (0, 1).
    """
    loc = feature_locations(feature_size, crop_size, like=torch.zeros(0, dtype=dtype, device=device)) / crop_size
    return loc.permute(2, 0, 1).unsqueeze(0).expand(batch, -1, -1, -1).contiguous()


def direction_map(kind: str, feature_size: int, boxes: torch.Tensor, image_size: torch.Tensor,
                  focal: torch.Tensor, crop_size: int = CROP_SIZE) -> torch.Tensor:
    """The 2-channel direction map of a square feature map.

    Parameters
    ----------
    kind : 'gdm' (global: P_d = P_g / f) or 'ldm' (crop-local, upper-left origin).
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


def _conv_gn_relu(cin: int, cout: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, 1, k // 2, bias=False), nn.GroupNorm(min(8, cout), cout), nn.ReLU(inplace=True)]


class DirectionMapFusion(nn.Module):
    """A convolution stage conditioned by the direction map (see the module docstring).

    Parameters
    ----------
    kind : 'gdm', 'ldm' or 'none'.
    in_channels : channels of the backbone map.
    channels : C, channels of the stage (the map is repeated to C); a 1×1 conv reduces the input
        to C first when ``in_channels`` differs.
    num_convs : 3×3 convolutions in the stage (the first one reads the concatenation).
    crop_size : s_p, px.
    """

    def __init__(self, kind: str, in_channels: int, channels: int, num_convs: int = 1, crop_size: int = CROP_SIZE):
        super().__init__()
        if kind not in DIRECTION_MAPS:
            raise ValueError(f"direction map must be one of {DIRECTION_MAPS}, got {kind!r}")
        self.kind, self.crop_size, self.channels = kind, crop_size, channels
        self.reduce = nn.Identity() if in_channels == channels else nn.Sequential(*_conv_gn_relu(in_channels, channels, 1))
        first = 2 * channels if kind != "none" else channels
        layers = _conv_gn_relu(first, channels, 3)
        for _ in range(num_convs - 1):
            layers += _conv_gn_relu(channels, channels, 3)
        self.stage = nn.Sequential(*layers)

    def stage_input(self, features: torch.Tensor, boxes: torch.Tensor, image_size: torch.Tensor,
                    focal: torch.Tensor) -> torch.Tensor:
        """(B, C_in, s_f, s_f) → (B, 2C or C, s_f, s_f): the reduced features with the repeated map appended."""
        x = self.reduce(features)
        if self.kind == "none":
            return x
        f32 = lambda t: t if t.dtype in (torch.float32, torch.float64) else t.float()  # noqa: E731
        d = direction_map(self.kind, x.shape[-1], f32(boxes), f32(image_size), f32(focal), self.crop_size)
        return torch.cat([x, repeat_to_channels(d, self.channels).to(x.dtype)], dim=1)

    def forward(self, features: torch.Tensor, boxes: torch.Tensor, image_size: torch.Tensor,
                focal: torch.Tensor) -> torch.Tensor:
        """features (B, C_in, s_f, s_f), boxes (B, 3) px, image_size (B, 2) px, focal (B,) px → (B, C, s_f, s_f)."""
        return self.stage(self.stage_input(features, boxes, image_size, focal))
