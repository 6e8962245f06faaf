"""Direction and positional encodings of DaHyF (DESIGN.md §3): GDM / LDM and γ(p).

The Global Direction Map tells the network *where in the full image* a crop location lies, as a
viewing direction ``P_d = (P_g) / f`` (P_g: image position relative to the image centre O, f: focal
length in px). The LDM ablation replaces it by crop-local coordinates. The same functions serve the
image network (feature-map locations) and the landmark variant (the 21 joints).
"""
from __future__ import annotations

import math

import torch

#: Input crop side of the network, px (s_p in the paper).
CROP_SIZE = 224
#: Number of frequencies of the positional encoding (L in the paper).
NUM_FREQS = 4


def feature_locations(feature_size: int, crop_size: int = CROP_SIZE, dtype=torch.float32, device=None) -> torch.Tensor:
    """Centres of the cells of a square feature map, in crop pixels.

    ``P_l = P_f * sc_p + sc_p / 2`` with ``sc_p = s_p / s_f``.

    Parameters
    ----------
    feature_size : s_f, cells per side.
    crop_size : s_p, px.

    Returns
    -------
    (s_f, s_f, 2) px, (x, y) of each cell centre; index [row, col] = [y, x].
    """
    sc_p = crop_size / feature_size
    idx = torch.arange(feature_size, dtype=dtype, device=device) * sc_p + sc_p / 2
    yy, xx = torch.meshgrid(idx, idx, indexing="ij")
    return torch.stack([xx, yy], dim=-1)


def global_direction(points_crop: torch.Tensor, crop_ulc: torch.Tensor, crop_side: torch.Tensor,
                     image_size: torch.Tensor, focal: torch.Tensor, crop_size: int = CROP_SIZE) -> torch.Tensor:
    """Viewing direction of crop locations in the full image (the GDM formula).

    ``P_g = P_l * sc_o + P_ulc - O`` with ``sc_o = s_i / s_p`` and ``O = (W/2, H/2)``;
    ``P_d = P_g / f``.

    Parameters
    ----------
    points_crop : (B, N, 2) px, locations P_l in the s_p × s_p crop.
    crop_ulc : (B, 2) px, upper-left corner of the crop in the image.
    crop_side : (B,) px, side s_i of the (square) crop in the image.
    image_size : (B, 2) px, (W, H).
    focal : (B,) px.
    crop_size : s_p, px.

    Returns
    -------
    (B, N, 2), dimensionless (x_d, y_d) = tangent of the viewing angle from the optical axis.
    """
    sc_o = (crop_side / crop_size)[:, None, None]
    centre = image_size[:, None, :] / 2
    p_g = points_crop * sc_o + crop_ulc[:, None, :] - centre
    return p_g / focal[:, None, None]


def local_direction(points_crop: torch.Tensor, crop_size: int = CROP_SIZE) -> torch.Tensor:
    """Crop-local coordinates (the LDM ablation): ``(P_l - s_p/2) / s_p``.

    Parameters
    ----------
    points_crop : (..., 2) px in the s_p crop.

    Returns
    -------
    (..., 2) in [-0.5, 0.5] inside the crop.
    """
    return (points_crop - crop_size / 2) / crop_size


def global_direction_map(feature_size: int, crop_ulc: torch.Tensor, crop_side: torch.Tensor,
                         image_size: torch.Tensor, focal: torch.Tensor, crop_size: int = CROP_SIZE) -> torch.Tensor:
    """The 2-channel Global Direction Map of a square feature map.

    Parameters
    ----------
    feature_size : s_f.
    crop_ulc : (B, 2) px; crop_side : (B,) px; image_size : (B, 2) px (W, H); focal : (B,) px.

    Returns
    -------
    (B, 2, s_f, s_f), channels (x_d, y_d).
    """
    loc = feature_locations(feature_size, crop_size, dtype=crop_side.dtype, device=crop_side.device)
    d = global_direction(loc.reshape(1, -1, 2).expand(crop_side.shape[0], -1, -1), crop_ulc, crop_side,
                         image_size, focal, crop_size)
    return d.reshape(-1, feature_size, feature_size, 2).permute(0, 3, 1, 2).contiguous()


def local_direction_map(feature_size: int, batch: int, crop_size: int = CROP_SIZE,
                        dtype=torch.float32, device=None) -> torch.Tensor:
    """The LDM ablation's 2-channel map: crop-local coordinates of each feature cell.

    Returns
    -------
    (batch, 2, s_f, s_f).
    """
    loc = local_direction(feature_locations(feature_size, crop_size, dtype=dtype, device=device), crop_size)
    return loc.permute(2, 0, 1).unsqueeze(0).expand(batch, -1, -1, -1).contiguous()


def positional_encoding(p: torch.Tensor, num_freqs: int = NUM_FREQS) -> torch.Tensor:
    """γ(p) = (sin(2^l π p), cos(2^l π p)) for l = 1..L, applied to every component.

    Parameters
    ----------
    p : (..., D).
    num_freqs : L.

    Returns
    -------
    (..., D * 2L): per component, the L sines then the L cosines.
    For the 21 joints (B, 21, 2) → (B, 21, 16); flattened that is the paper's V_PE ∈ R^336.
    """
    freqs = (2.0 ** torch.arange(1, num_freqs + 1, dtype=p.dtype, device=p.device)) * math.pi
    x = p[..., None] * freqs
    return torch.cat([torch.sin(x), torch.cos(x)], dim=-1).flatten(-2)


def joint_mu(joints_crop: torch.Tensor, focal_crop: torch.Tensor, crop_size: int = CROP_SIZE) -> torch.Tensor:
    """The positional-encoding input of the joints, ``μ = (J2d - s_p/2) / f``.

    The focal length is taken in crop pixels (``f_crop = f · s_p / s_i``) so that μ is the tangent of
    the joint's viewing angle from the crop centre.

    Parameters
    ----------
    joints_crop : (B, 21, 2) px in the s_p crop.
    focal_crop : (B,) px, focal length in crop pixels.

    Returns
    -------
    (B, 21, 2).
    """
    return (joints_crop - crop_size / 2) / focal_crop[:, None, None]
