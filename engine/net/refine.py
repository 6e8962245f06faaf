"""Per-frame refinement of a hand's pose and translation to its 2-D landmarks (batched Gauss-Newton).

The network's prediction (θ_net, t_net) is the starting point *and* the prior. A few damped
Gauss-Newton steps minimise, per sample,

    E(Δ) = Σ_k ρ(‖π(P_k(θ, t)) − l_k‖ / s)  +  Σ_j λ_j² ‖log(R_j,net⁻¹ R_j)‖²  +  λ_z² ((t_z − t_z,net) / t_z,net)²

with P_k the 21 posed MANO keypoints (:class:`~dahyf.net.landmark.KeypointLayer`), π the pinhole
projection (OpenCV, principal point at the image centre), l_k the landmarks, s the landmark box's
longer side (residuals are fractions of the hand size), ρ a Huber loss (IRLS weights) and R_j the
local rotation of joint j. Rotations are updated on SO(3): ``R_j ← R_j exp([Δ_j]×)``.

The Jacobian is analytic: rotating joint j by Δ_j (its own frame) moves every keypoint k below it by
``(G_j Δ_j) × (P_k − o_j)`` (G_j: the joint's world rotation, o_j: its position); the fingertips'
pose-corrective offsets are left out of the Jacobian (they are in the residual). The translation
moves every keypoint by Δt. All samples are solved at once: one (51 × 51) symmetric positive
definite system each (Cholesky; the prior keeps it definite).
β is kept (the capture pipeline fixes one β per track).
"""
from __future__ import annotations

import torch

from ..hand import kinematics as K
from ..hand.tables import KEYPOINT_PARENTS, KEYPOINT_SOURCES, NUM_JOINTS, NUM_KEYPOINTS, PARENTS

#: Default prior weights (residual units: fraction of the hand size per radian): the global
#: rotation, and the 15 finger joints. Chosen on the synthetic held-out sets, the rendered sample
#: clip and the real video (benchmarks/landmark_engine.md): weaker priors fit the landmarks closer
#: but lose 3-D accuracy on landmarks at the measured MediaPipe noise level.
ROOT_PRIOR = 0.5
FINGER_PRIOR = 0.2
#: Relative depth change cost (fraction of the hand size per 100 % of depth), as refine_translation.
DEPTH_PRIOR = 2.0
#: Huber threshold of a keypoint's 2-D residual, fraction of the hand size.
HUBER = 0.04
#: Largest rotation update of one joint in one step, rad.
MAX_STEP = 0.5
ITERATIONS = 2


def _ancestors_or_self(j: int) -> list[int]:
    out = []
    while j >= 0:
        out.append(j)
        j = PARENTS[j]
    return out


def keypoint_joint_mask() -> torch.Tensor:
    """(21, 16) bool: True where rotating MANO joint j (in its own frame) moves keypoint k.

    A keypoint hangs off its parent keypoint's source joint: it moves with that joint and its
    ancestors (the wrist moves with none).
    """
    mask = torch.zeros(NUM_KEYPOINTS, NUM_JOINTS, dtype=torch.bool)
    for k in range(NUM_KEYPOINTS):
        p = KEYPOINT_PARENTS[k]
        if p < 0:
            continue
        for j in _ancestors_or_self(KEYPOINT_SOURCES[p]):
            mask[k, j] = True
    return mask


_MASK = keypoint_joint_mask()
#: The (keypoint, joint) pairs of the mask (50 of the 336): only these Jacobian blocks are non-zero.
_PAIR_K, _PAIR_J = _MASK.nonzero(as_tuple=True)


def skew(v: torch.Tensor) -> torch.Tensor:
    """(..., 3) → (..., 3, 3) cross-product matrices, ``skew(a) b = a × b``."""
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], -1).reshape(*v.shape[:-1], 3, 3)


def project(points: torch.Tensor, focal: torch.Tensor, image_size: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pinhole projection and its Jacobian.

    Parameters
    ----------
    points : (B, N, 3) m, camera frame (OpenCV: x right, y down, z forward).
    focal : (B,) px; image_size : (B, 2) px (W, H), principal point at its centre.

    Returns
    -------
    uv : (B, N, 2) px; d_uv_d_points : (B, N, 2, 3) px / m.
    """
    z = points[..., 2:].clamp(min=1e-4)
    xy = points[..., :2] / z
    f = focal[:, None, None]
    uv = f * xy + image_size[:, None] / 2
    fz = (f / z)[..., None]                                   # (B, N, 1, 1)
    eye2 = torch.eye(2, dtype=points.dtype, device=points.device).expand(*points.shape[:-1], 2, 2)
    jac = torch.cat([eye2, -xy[..., None]], -1) * fz          # (B, N, 2, 3)
    return uv, jac


def residual_jacobian(keypoints: torch.Tensor, joints: torch.Tensor, global_rot: torch.Tensor,
                      landmarks2d: torch.Tensor, image_size: torch.Tensor, focal: torch.Tensor,
                      hand_size: torch.Tensor, depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """2-D residuals and their Jacobian w.r.t. the 16 local rotation updates and the translation.

    Parameters
    ----------
    keypoints : (B, 21, 3) m, posed keypoints (with translation); joints : (B, 16, 3) m, posed joints;
    global_rot : (B, 16, 3, 3) world rotation of each joint; landmarks2d : (B, 21, 2) px;
    image_size : (B, 2) px; focal : (B,) px; hand_size : (B,) px; depth : (B,) m (translation unit).

    Returns
    -------
    r : (B, 42), fractions of the hand size; J : (B, 42, 51): columns 3j..3j+2 for joint j's update
    (rad), the last 3 for the translation update in units of ``depth`` (m / depth).
    """
    B = keypoints.shape[0]
    uv, d_uv = project(keypoints, focal, image_size)
    inv_s = (1 / hand_size)[:, None, None]
    r = ((uv - landmarks2d) * inv_s).reshape(B, -1)
    # Row u of d_uv against dP = (G Δ) × arm:  u · ((G Δ) × arm) = ((arm × u) G) · Δ.
    pk, pj = _PAIR_K.to(keypoints.device), _PAIR_J.to(keypoints.device)
    arm = keypoints[:, pk] - joints[:, pj]                              # (B, P, 3)
    u = d_uv[:, pk]                                                     # (B, P, 2, 3)
    rows = torch.linalg.cross(arm[:, :, None].expand_as(u), u) @ global_rot[:, pj]   # (B, P, 2, 3)
    d_rot = keypoints.new_zeros(B, NUM_KEYPOINTS, NUM_JOINTS, 2, 3)
    d_rot[:, pk, pj] = rows * inv_s[..., None]
    d_rot = d_rot.permute(0, 1, 3, 2, 4).reshape(B, 2 * NUM_KEYPOINTS, 3 * NUM_JOINTS)
    d_t = (d_uv * (inv_s * depth[:, None, None])[..., None]).reshape(B, 2 * NUM_KEYPOINTS, 3)
    return r, torch.cat([d_rot, d_t], -1)


def posed_keypoints(keypoint_layer, rotmats: torch.Tensor, betas: torch.Tensor, transl: torch.Tensor):
    """joints (B, 16, 3) m, keypoints (B, 21, 3) m and world rotations (B, 16, 3, 3) of a hand.

    ``keypoint_layer``: a :class:`~dahyf.net.landmark.KeypointLayer`.
    """
    joints, keypoints, transforms = keypoint_layer.posed(rotmats, betas, transl)
    return joints, keypoints, transforms[..., :3, :3]


def refine_pose(keypoint_layer, rotmats: torch.Tensor, betas: torch.Tensor, transl: torch.Tensor,
                landmarks2d: torch.Tensor, image_size: torch.Tensor, focal: torch.Tensor,
                iterations: int = ITERATIONS, root_prior: float = ROOT_PRIOR, finger_prior: float = FINGER_PRIOR,
                depth_prior: float = DEPTH_PRIOR, huber: float = HUBER) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit the local joint rotations and the translation of right hands to their landmarks.

    Parameters
    ----------
    keypoint_layer : :class:`~dahyf.net.landmark.KeypointLayer` of the right hand model.
    rotmats : (B, 16, 3, 3) the network's local rotations (start and prior).
    betas : (B, 10), kept fixed.
    transl : (B, 3) m, camera frame, start and depth prior.
    landmarks2d : (B, 21, 2) px, image; image_size : (B, 2) px (W, H); focal : (B,) px.
    iterations : Gauss-Newton steps (0 returns the input).
    root_prior, finger_prior : λ of the rotation prior, fraction of the hand size per rad.
    depth_prior : λ_z, fraction of the hand size per relative depth change.
    huber : Huber threshold of a keypoint's 2-D residual, fraction of the hand size.

    Returns
    -------
    rotmats (B, 16, 3, 3), transl (B, 3) m.
    """
    B = rotmats.shape[0]
    if B == 0 or iterations <= 0:
        return rotmats, transl
    dt, dev = rotmats.dtype, rotmats.device
    R0, R, t = rotmats, rotmats.clone(), transl.clone()
    hand_size = (landmarks2d.amax(1) - landmarks2d.amin(1)).amax(-1).clamp(min=1.0)
    depth = transl[:, 2].clamp(min=1e-2)
    lam = torch.full((3 * NUM_JOINTS,), finger_prior, dtype=dt, device=dev)
    lam[:3] = root_prior
    prior_diag = torch.cat([lam ** 2, torch.tensor([1e-6, 1e-6, depth_prior ** 2], dtype=dt, device=dev)])
    n = prior_diag.shape[0]
    eye = torch.eye(n, dtype=dt, device=dev)
    for _ in range(iterations):
        joints, kp, G = posed_keypoints(keypoint_layer, R, betas, t)
        r, J = residual_jacobian(kp, joints, G, landmarks2d, image_size, focal, hand_size, depth)
        # Huber IRLS weights per keypoint (both coordinates).
        norm = r.reshape(B, NUM_KEYPOINTS, 2).norm(dim=-1)
        w = torch.where(norm <= huber, torch.ones_like(norm), huber / norm.clamp(min=1e-12))
        w = w.repeat_interleave(2, dim=1)                                 # (B, 42)
        phi = K.matrix_to_axis_angle(R0.transpose(-1, -2) @ R).reshape(B, -1)   # (B, 48) current deviation
        offset = torch.cat([phi, ((t - transl) / depth[:, None])], -1)   # (B, 51)
        Jw = J * w[..., None]
        A = J.transpose(1, 2) @ Jw + prior_diag * eye + 1e-6 * eye
        g = (Jw.transpose(1, 2) @ r[..., None])[..., 0] + prior_diag * offset
        delta = -torch.cholesky_solve(g[..., None], torch.linalg.cholesky(A))[..., 0]
        d_rot = delta[:, :3 * NUM_JOINTS].reshape(B, NUM_JOINTS, 3)
        scale = (MAX_STEP / d_rot.norm(dim=-1, keepdim=True).clamp(min=1e-12)).clamp(max=1.0)
        R = R @ K.batch_rodrigues(d_rot * scale)
        t = t + delta[:, 3 * NUM_JOINTS:] * depth[:, None]
    return R, t
