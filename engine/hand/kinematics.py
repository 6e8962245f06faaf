"""Forward kinematics and linear blend skinning of the MANO hand, as pure array functions.

Written once against the array API (:mod:`dahyf.backend`): numpy arrays at capture time, torch
tensors (autograd, CUDA) in training. All functions are batched and hold no state. Conventions
follow MANO / smplx: axis-angle rotations, each joint rotated about its own rest position, a
child's world transform = parent's world transform · local transform.
"""
from __future__ import annotations

from ..backend import device, namespace
from . import quaternion as Q


def batch_rodrigues(axis_angle):
    """Axis-angle vectors to rotation matrices (Rodrigues), exact and smooth at zero angle.

    Parameters
    ----------
    axis_angle : (..., 3) rad, direction = axis, norm = angle.

    Returns
    -------
    (..., 3, 3) rotation matrices, ``R = I + a·K + b·K²`` with K = skew(axis_angle),
    a = sin θ / θ, b = (1 − cos θ) / θ² (Taylor series below 1e-4 rad). Same dtype as the input.
    """
    xp = namespace(axis_angle)
    theta2 = xp.sum(axis_angle * axis_angle, axis=-1, keepdims=True)[..., None]  # (..., 1, 1)
    theta = xp.sqrt(xp.clip(theta2, min=1e-24))
    small = theta2 < 1e-8
    a = xp.where(small, 1 - theta2 / 6, xp.sin(theta) / theta)
    b = xp.where(small, 0.5 - theta2 / 24, (1 - xp.cos(theta)) / xp.clip(theta2, min=1e-24))
    K = skew(axis_angle)
    eye = xp.eye(3, dtype=axis_angle.dtype, device=device(axis_angle))
    return eye + a * K + b * (K @ K)


def skew(v):
    """(..., 3) → (..., 3, 3) cross-product matrices, ``skew(a) b = a × b``."""
    xp = namespace(v)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    o = xp.zeros_like(x)
    return xp.reshape(xp.stack([o, -z, y, z, o, -x, -y, x, o], axis=-1), (*v.shape[:-1], 3, 3))


def matrix_to_axis_angle(R):
    """Rotation matrices (..., 3, 3) to axis-angle vectors (..., 3) rad, angle in [0, π]."""
    return Q.to_axis_angle(Q.from_matrix(R))


def blend_shapes(betas, shapedirs):
    """Shape blend-shape offsets.

    Parameters
    ----------
    betas : (B, S) shape coefficients.
    shapedirs : (V, 3, S) m per unit coefficient.

    Returns
    -------
    (B, V, 3) m.
    """
    xp = namespace(betas, shapedirs)
    V, S = shapedirs.shape[0], shapedirs.shape[-1]
    flat = xp.reshape(shapedirs, (V * 3, S))
    return xp.reshape(betas @ xp.matrix_transpose(flat), (betas.shape[0], V, 3))


def pose_feature(rot_mats):
    """The pose-corrective feature of MANO: ``(R_j - I)`` of the 15 finger joints, flattened.

    Parameters
    ----------
    rot_mats : (B, 16, 3, 3).

    Returns
    -------
    (B, 135).
    """
    xp = namespace(rot_mats)
    eye = xp.eye(3, dtype=rot_mats.dtype, device=device(rot_mats))
    B, J = rot_mats.shape[:2]
    return xp.reshape(rot_mats[:, 1:] - eye, (B, 9 * (J - 1)))  # explicit size: B may be 0


def forward_kinematics(rot_mats, rest_joints, parents: tuple[int, ...] | list[int]):
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
    xp = namespace(rot_mats, rest_joints)
    B, J = rot_mats.shape[:2]
    rel = xp.concat([rest_joints[:, :1], rest_joints[:, 1:] - rest_joints[:, list(parents[1:])]], axis=1)
    dev = device(rot_mats)
    bottom = xp.broadcast_to(xp.asarray([0.0, 0.0, 0.0, 1.0], dtype=rot_mats.dtype, device=dev), (B, J, 1, 4))
    local = xp.concat([xp.concat([rot_mats, rel[..., None]], axis=-1), bottom], axis=-2)   # (B, J, 4, 4)
    chain = [local[:, 0]]
    for j in range(1, J):
        chain.append(chain[parents[j]] @ local[:, j])
    world = xp.stack(chain, axis=1)  # (B, J, 4, 4) joint frames
    posed_joints = world[..., :3, 3]
    # Remove the rest joint position so the transform applies to rest-pose points.
    offset = (world[..., :3, :3] @ rest_joints[..., None])[..., 0]
    top = xp.concat([world[..., :3, :3], (posed_joints - offset)[..., None]], axis=-1)
    return posed_joints, xp.concat([top, world[..., 3:, :]], axis=-2)


def skin(vertices, weights, transforms):
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
    xp = namespace(vertices, transforms)
    B, J = transforms.shape[:2]
    T = xp.reshape(weights @ xp.reshape(transforms, (B, J, 16)), (B, weights.shape[0], 4, 4))  # (B, V, 4, 4)
    return (T[..., :3, :3] @ vertices[..., None])[..., 0] + T[..., :3, 3]
