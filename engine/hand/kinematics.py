"""Forward kinematics and linear blend skinning of the MANO hand, as pure torch functions.

All functions are batched, work in float32 or float64 on CPU or CUDA, and hold no state.
Conventions follow MANO / smplx: axis-angle rotations, each joint rotated about its own rest
position, a child's world transform = parent's world transform · local transform.
"""
from __future__ import annotations

import torch


def batch_rodrigues(axis_angle: torch.Tensor) -> torch.Tensor:
    """Axis-angle vectors to rotation matrices (Rodrigues), exact and smooth at zero angle.

    Parameters
    ----------
    axis_angle : (..., 3) rad, direction = axis, norm = angle.

    Returns
    -------
    (..., 3, 3) rotation matrices, ``R = I + a·K + b·K²`` with K = skew(axis_angle),
    a = sin θ / θ, b = (1 − cos θ) / θ² (Taylor series below 1e-4 rad).
    """
    theta2 = (axis_angle * axis_angle).sum(-1, keepdim=True)[..., None]  # (..., 1, 1)
    theta = torch.sqrt(theta2.clamp(min=1e-24))
    small = theta2 < 1e-8
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2.clamp(min=1e-24))
    x, y, z = axis_angle.unbind(-1)
    zeros = torch.zeros_like(x)
    K = torch.stack([zeros, -z, y, z, zeros, -x, -y, x, zeros], dim=-1).reshape(*axis_angle.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + a * K + b * (K @ K)


def matrix_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """Rotation matrices to axis-angle vectors (angle in [0, π]).

    Parameters
    ----------
    R : (..., 3, 3) rotation matrices.

    Returns
    -------
    (..., 3) rad.
    """
    q = matrix_to_quaternion(R)
    return quaternion_to_axis_angle(q)


def matrix_to_quaternion(R: torch.Tensor) -> torch.Tensor:
    """Rotation matrices to unit quaternions (w, x, y, z) with w ≥ 0.

    Parameters
    ----------
    R : (..., 3, 3).

    Returns
    -------
    (..., 4).
    """
    m = R
    t = [
        1 + m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2],
        1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2],
        1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2],
        1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2],
    ]
    t = torch.stack(t, dim=-1)
    # Four candidate quaternions, pick the best conditioned one (largest diagonal term).
    w_c = torch.stack([t[..., 0], m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1)
    x_c = torch.stack([m[..., 2, 1] - m[..., 1, 2], t[..., 1], m[..., 1, 0] + m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0]], -1)
    y_c = torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1], t[..., 2], m[..., 2, 1] + m[..., 1, 2]], -1)
    z_c = torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 2, 1] + m[..., 1, 2], t[..., 3]], -1)
    cands = torch.stack([w_c, x_c, y_c, z_c], dim=-2)  # (..., 4, 4)
    best = t.argmax(dim=-1)
    q = torch.gather(cands, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q = q / torch.linalg.norm(q, dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def quaternion_to_axis_angle(q: torch.Tensor) -> torch.Tensor:
    """Unit quaternions (w, x, y, z) to axis-angle vectors.

    Parameters
    ----------
    q : (..., 4).

    Returns
    -------
    (..., 3) rad, angle in [0, π].
    """
    q = torch.where(q[..., :1] < 0, -q, q)
    xyz = q[..., 1:]
    s = torch.linalg.norm(xyz, dim=-1, keepdim=True)
    angle = 2 * torch.atan2(s, q[..., :1])
    # angle / sin(angle/2), with the small-angle limit 2.
    small = s < 1e-6
    factor = torch.where(small, 2.0 / q[..., :1].clamp(min=1e-12), angle / s.clamp(min=1e-12))
    return xyz * factor


def axis_angle_to_quaternion(axis_angle: torch.Tensor) -> torch.Tensor:
    """Axis-angle vectors to unit quaternions (w, x, y, z).

    Parameters
    ----------
    axis_angle : (..., 3) rad.

    Returns
    -------
    (..., 4).
    """
    angle = torch.linalg.norm(axis_angle, dim=-1, keepdim=True)
    half = angle / 2
    small = angle < 1e-6
    k = torch.where(small, 0.5 - angle**2 / 48, torch.sin(half) / angle.clamp(min=1e-12))
    return torch.cat([torch.cos(half), axis_angle * k], dim=-1)


def blend_shapes(betas: torch.Tensor, shapedirs: torch.Tensor) -> torch.Tensor:
    """Shape blend-shape offsets.

    Parameters
    ----------
    betas : (B, S) shape coefficients.
    shapedirs : (V, 3, S) m per unit coefficient.

    Returns
    -------
    (B, V, 3) m.
    """
    return torch.einsum("bl,mkl->bmk", betas, shapedirs)


def pose_feature(rot_mats: torch.Tensor) -> torch.Tensor:
    """The pose-corrective feature of MANO: ``(R_j - I)`` of the 15 finger joints, flattened.

    Parameters
    ----------
    rot_mats : (B, 16, 3, 3).

    Returns
    -------
    (B, 135).
    """
    eye = torch.eye(3, dtype=rot_mats.dtype, device=rot_mats.device)
    return (rot_mats[:, 1:] - eye).flatten(1)  # (B, 9 (J - 1)); flatten, not reshape(B, -1): B may be 0


def forward_kinematics(
    rot_mats: torch.Tensor, rest_joints: torch.Tensor, parents: tuple[int, ...] | list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chain local joint rotations down the kinematic tree.

    Parameters
    ----------
    rot_mats : (B, J, 3, 3) local rotations, each about its joint's rest position.
    rest_joints : (B, J, 3) m, rest joint positions.
    parents : length J, parent index per joint (-1 for the root); parents precede children.

    Returns
    -------
    posed_joints : (B, J, 3) m.
    transforms : (B, J, 4, 4) world transforms relative to the rest pose
        (maps a rest-pose point rigidly attached to joint j to its posed position).
    """
    B, J = rot_mats.shape[:2]
    rel = rest_joints.clone()
    parent_idx = torch.as_tensor(list(parents[1:]), device=rest_joints.device)
    rel[:, 1:] = rest_joints[:, 1:] - rest_joints[:, parent_idx]
    local = torch.zeros(B, J, 4, 4, dtype=rot_mats.dtype, device=rot_mats.device)
    local[..., :3, :3] = rot_mats
    local[..., :3, 3] = rel
    local[..., 3, 3] = 1
    chain = [local[:, 0]]
    for j in range(1, J):
        chain.append(chain[parents[j]] @ local[:, j])
    world = torch.stack(chain, dim=1)  # (B, J, 4, 4) joint frames
    posed_joints = world[..., :3, 3]
    # Remove the rest joint position so the transform applies to rest-pose points.
    offset = world[..., :3, :3] @ rest_joints[..., None]
    transforms = world.clone()
    transforms[..., :3, 3] = posed_joints - offset[..., 0]
    return posed_joints, transforms


def skin(vertices: torch.Tensor, weights: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
    """Linear blend skinning.

    Parameters
    ----------
    vertices : (B, V, 3) m, rest-pose (shaped and pose-corrected) vertices.
    weights : (V, J) skin weights, rows sum to 1.
    transforms : (B, J, 4, 4) from :func:`forward_kinematics`.

    Returns
    -------
    (B, V, 3) m, posed vertices.
    """
    T = torch.einsum("vj,bjmn->bvmn", weights, transforms)  # (B, V, 4, 4)
    return (T[..., :3, :3] @ vertices[..., None])[..., 0] + T[..., :3, 3]
