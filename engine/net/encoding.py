"""Direction and positional encodings of DaHyF (DESIGN.md §3): GDM / LDM and γ(p).

The Global Direction Map tells the network *where in the full image* a crop location lies, as a
viewing direction ``P_d = (P_g) / f`` (P_g: image position relative to the image centre O, f: focal
length in px). The LDM ablation replaces it by crop-local coordinates. The same functions serve the
image network (feature-map locations) and the landmark variant (the 21 joints). Array-API functions
(:mod:`dahyf.backend`): numpy arrays or tensors; the feature-map builders are torch-only (image network).
"""
from __future__ import annotations

import math

from ..backend import device, namespace
from ..constants import CROP_SIZE

#: Number of frequencies of the positional encoding (L in the paper).
NUM_FREQS = 4


def feature_locations(feature_size: int, crop_size: int = CROP_SIZE, like=None):
    """Centres of the cells of a square feature map, in crop pixels.

    ``P_l = P_f * sc_p + sc_p / 2`` with ``sc_p = s_p / s_f``.

    Parameters
    ----------
    feature_size : s_f, cells per side.
    crop_size : s_p, px.

    like : an array whose library, dtype and device the result takes (default: float32 numpy).

    Returns
    -------
    (s_f, s_f, 2) px, (x, y) of each cell centre; index [row, col] = [y, x].
    """
    if like is None:
        import numpy as np

        like = np.zeros(0, np.float32)
    xp = namespace(like)
    sc_p = crop_size / feature_size
    idx = xp.arange(feature_size, dtype=like.dtype, device=device(like)) * sc_p + sc_p / 2
    yy, xx = xp.meshgrid(idx, idx, indexing="ij")
    return xp.stack([xx, yy], axis=-1)


def global_direction(points_crop, crop_ulc, crop_side, image_size, focal, crop_size: int = CROP_SIZE):
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


def local_direction(points_crop, crop_size: int = CROP_SIZE):
    """Crop-local coordinates (the LDM ablation): ``(P_l - s_p/2) / s_p``.

    Parameters
    ----------
    points_crop : (..., 2) px in the s_p crop.

    Returns
    -------
    (..., 2) in [-0.5, 0.5] inside the crop.
    """
    return (points_crop - crop_size / 2) / crop_size


def global_direction_map(feature_size: int, crop_ulc, crop_side, image_size, focal, crop_size: int = CROP_SIZE):
    """The 2-channel Global Direction Map of a square feature map.

    Parameters
    ----------
    feature_size : s_f.
    crop_ulc : (B, 2) px; crop_side : (B,) px; image_size : (B, 2) px (W, H); focal : (B,) px.

    Returns
    -------
    (B, 2, s_f, s_f), channels (x_d, y_d).
    """
    xp = namespace(crop_side)
    loc = feature_locations(feature_size, crop_size, like=crop_side)
    d = global_direction(xp.broadcast_to(xp.reshape(loc, (1, -1, 2)), (crop_side.shape[0], feature_size ** 2, 2)),
                         crop_ulc, crop_side, image_size, focal, crop_size)
    return xp.permute_dims(xp.reshape(d, (-1, feature_size, feature_size, 2)), (0, 3, 1, 2))


def positional_encoding(p, num_freqs: int = NUM_FREQS):
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
    xp = namespace(p)
    freqs = (2.0 ** xp.arange(1, num_freqs + 1, dtype=p.dtype, device=device(p))) * math.pi
    x = p[..., None] * freqs
    return xp.reshape(xp.concat([xp.sin(x), xp.cos(x)], axis=-1), (*p.shape[:-1], p.shape[-1] * 2 * num_freqs))


def joint_mu(joints_crop, focal_crop, crop_size: int = CROP_SIZE):
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
