"""Per-frame refinement of a hand's pose and translation to its 2-D landmarks (batched Gauss-Newton).

The network's prediction (θ_net, t_net) is the starting point *and* the prior. A few damped
Gauss-Newton steps minimise, per sample,

    E(Δ) = Σ_k ρ(‖π(P_k(θ, t)) − l_k‖ / s)  +  Σ_j φ_jᵀ Λ_j φ_j  +  λ_z² ((t_z − t_z,net) / t_z,net)²,
    φ_j = log(R_j,net⁻¹ R_j)

with P_k the 21 posed MANO keypoints (:class:`~dahyf.hand.model.KeypointLayer`), π the pinhole
projection (OpenCV, principal point at the image centre), l_k the landmarks, s the landmark box's
longer side (residuals are fractions of the hand size), ρ a Huber loss (IRLS weights) and R_j the
local rotation of joint j, ``Λ_j = λ_j² I`` (λ: the root or the finger prior) — or, for a finger joint
given its flexion axis ``a_j`` and an ``off_axis_prior`` λ_o, ``λ_f² a_j a_jᵀ + λ_o² (I − a_j a_jᵀ)``:
the fit may bend a finger away from the network's pose as freely as before, while turning it
sideways or twisting it (where the network's pose is kept) costs more — the fit follows landmark
noise by bending, not by twisting.
Rotations are updated on SO(3): ``R_j ← R_j exp([Δ_j]×)``.

The Jacobian is analytic: rotating joint j by Δ_j (its own frame) moves every keypoint k below it by
``(G_j Δ_j) × (P_k − o_j)`` (G_j: the joint's world rotation, o_j: its position); the fingertips'
pose-corrective offsets are left out of the Jacobian (they are in the residual). The translation
moves every keypoint by Δt. All samples are solved at once: one (51 × 51) symmetric positive
definite system each (the prior keeps it definite). A row whose system cannot be solved, or whose
fit is not finite, keeps the network's prediction and is flagged (``failed``); the batch goes on.
β is kept (the capture pipeline fixes one β per track). Array-API code (:mod:`dahyf.backend`):
numpy at capture time, torch on CUDA and in tests of the gradients.
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import device, namespace, rows_finite, solve_batched
from ..geometry import hand_size as landmark_hand_size
from ..geometry import project_points, project_points_jacobian
from ..hand import kinematics as K
from ..hand.tables import KEYPOINT_PARENTS, KEYPOINT_SOURCES, NUM_JOINTS, NUM_KEYPOINTS, PARENTS

#: Default prior weights (residual units: fraction of the hand size per radian): the global
#: rotation, and the 15 finger joints. Chosen on the synthetic held-out sets, the rendered sample
#: clip and the real video (benchmarks/landmark_engine.md): weaker priors fit the landmarks closer
#: but lose 3-D accuracy on landmarks at the measured MediaPipe noise level.
ROOT_PRIOR = 0.5
FINGER_PRIOR = 0.2
#: Prior on a finger joint's rotation off its flexion axis (sideways and twisting), same units,
#: used when the fit is given the joints' flexion axes (the landmark estimator does): a finger
#: follows landmark noise by bending, not by twisting. 0.5 over the isotropic 0.2, measured with the
#: previous checkpoint (benchmarks/fidelity.md): rendered clips PA-MPJPE 6.31 → 6.16 mm,
#: straight-finger flexion error 12.9 → 12.0°, real video straight fingers 11.7 → 11.3° (1.5: 6.22 mm,
#: 12.2°; leaving the base joints' sideways spread free as well: 6.23 mm, 12.2°, 11.6°).
OFF_AXIS_PRIOR = 0.5
#: Relative depth change cost (fraction of the hand size per 100 % of depth), as refine_translation.
DEPTH_PRIOR = 2.0
#: Huber threshold of a keypoint's 2-D residual, fraction of the hand size.
HUBER = 0.04
#: Largest rotation update of one joint in one step, rad.
MAX_STEP = 0.5
ITERATIONS = 2

#: The options a checkpoint's ``meta.refine_pose_options`` may set: name → (type, lowest, highest).
REFINE_OPTIONS = {
    "iterations": (int, 0, 20),
    "root_prior": (float, 0.0, 1e3),
    "finger_prior": (float, 0.0, 1e3),
    "depth_prior": (float, 0.0, 1e3),
    "huber": (float, 1e-4, 1e3),
    "off_axis_prior": (float, 0.0, 1e3),
}


def validate_refine_options(options) -> dict:
    """The refinement options of a checkpoint's meta, checked against :data:`REFINE_OPTIONS`.

    Raises
    ------
    ValueError
        An unknown name, a wrong type or a value out of range (the message names it).
    """
    if not isinstance(options, dict):
        raise ValueError(f"refine_pose_options must be a mapping, got {type(options).__name__}")
    out = {}
    for name, value in options.items():
        if name not in REFINE_OPTIONS:
            raise ValueError(f"unknown refine_pose option {name!r}; known: {', '.join(REFINE_OPTIONS)}")
        kind, lo, hi = REFINE_OPTIONS[name]
        ok_type = isinstance(value, int) if kind is int else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type or not math.isfinite(value) or not lo <= value <= hi:
            raise ValueError(f"refine_pose option {name} must be a {kind.__name__} in [{lo}, {hi}], got {value!r}")
        out[name] = kind(value)
    return out


def _ancestors_or_self(j: int) -> list[int]:
    out = []
    while j >= 0:
        out.append(j)
        j = PARENTS[j]
    return out


def keypoint_joint_mask() -> np.ndarray:
    """(21, 16) bool: True where rotating MANO joint j (in its own frame) moves keypoint k.

    A keypoint hangs off its parent keypoint's source joint: it moves with that joint and its
    ancestors (the wrist moves with none).
    """
    mask = np.zeros((NUM_KEYPOINTS, NUM_JOINTS), dtype=bool)
    for k in range(NUM_KEYPOINTS):
        p = KEYPOINT_PARENTS[k]
        if p < 0:
            continue
        for j in _ancestors_or_self(KEYPOINT_SOURCES[p]):
            mask[k, j] = True
    return mask


#: The (keypoint, joint) pairs of the mask (50 of the 336): only these Jacobian blocks are non-zero.
_PAIR_K, _PAIR_J = (idx.tolist() for idx in np.nonzero(keypoint_joint_mask()))


def residual_jacobian(keypoints, joints, global_rot, landmarks2d, image_size, focal, hand_size, depth):
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
    xp = namespace(keypoints)
    B = keypoints.shape[0]
    uv = project_points(keypoints, focal, image_size)
    d_uv = project_points_jacobian(keypoints, focal)
    inv_s = (1 / hand_size)[:, None, None]
    r = xp.reshape((uv - landmarks2d) * inv_s, (B, 2 * NUM_KEYPOINTS))
    # Row u of d_uv against dP = (G Δ) × arm:  u · ((G Δ) × arm) = ((arm × u) G) · Δ.
    arm = keypoints[:, _PAIR_K] - joints[:, _PAIR_J]                                    # (B, P, 3)
    u = d_uv[:, _PAIR_K]                                                                # (B, P, 2, 3)
    rows = xp.linalg.cross(xp.broadcast_to(arm[:, :, None], u.shape), u, axis=-1) @ global_rot[:, _PAIR_J]
    d_rot = xp.zeros((B, NUM_KEYPOINTS, NUM_JOINTS, 2, 3), dtype=keypoints.dtype, device=device(keypoints))
    d_rot[:, _PAIR_K, _PAIR_J] = rows * inv_s[..., None]
    d_rot = xp.reshape(xp.permute_dims(d_rot, (0, 1, 3, 2, 4)), (B, 2 * NUM_KEYPOINTS, 3 * NUM_JOINTS))
    d_t = xp.reshape(d_uv * (inv_s * depth[:, None, None])[..., None], (B, 2 * NUM_KEYPOINTS, 3))
    return r, xp.concat([d_rot, d_t], axis=-1)


def posed_keypoints(keypoint_layer, rotmats, betas, transl):
    """joints (B, 16, 3) m, keypoints (B, 21, 3) m and world rotations (B, 16, 3, 3) of a hand.

    ``keypoint_layer``: a :class:`~dahyf.hand.model.KeypointLayer`.
    """
    joints, keypoints, transforms = keypoint_layer.posed(rotmats, betas, transl)
    return joints, keypoints, transforms[..., :3, :3]


def prior_matrix(root_prior: float, finger_prior: float, depth_prior: float, flex_axes=None,
                 off_axis_prior: float | None = None) -> np.ndarray:
    """The (51, 51) prior of the fit's unknowns (16 joint rotations, rad; translation, in depths).

    Block diagonal: ``root_prior² I`` for the global rotation; per finger joint ``finger_prior² I``,
    or ``finger_prior² a aᵀ + off_axis_prior² (I − a aᵀ)`` with ``a`` its flexion axis (``flex_axes``
    (16, 3), :func:`dahyf.hand.axes.anatomical_axes`) when both are given; ``depth_prior²`` on the
    relative depth change (and a tiny weight on the lateral translation).
    """
    P = np.zeros((3 * NUM_JOINTS + 3, 3 * NUM_JOINTS + 3))
    P[:3, :3] = root_prior ** 2 * np.eye(3)
    for j in range(1, NUM_JOINTS):
        block = finger_prior ** 2 * np.eye(3)
        if flex_axes is not None and off_axis_prior is not None:
            a = np.asarray(flex_axes[j], np.float64)
            aa = np.outer(a, a) / (a @ a)
            block = finger_prior ** 2 * aa + off_axis_prior ** 2 * (np.eye(3) - aa)
        P[3 * j:3 * j + 3, 3 * j:3 * j + 3] = block
    P[-3:, -3:] = np.diag([1e-6, 1e-6, depth_prior ** 2])
    return P


def refine_pose(keypoint_layer, rotmats, betas, transl, landmarks2d, image_size, focal,
                iterations: int = ITERATIONS, root_prior: float = ROOT_PRIOR, finger_prior: float = FINGER_PRIOR,
                depth_prior: float = DEPTH_PRIOR, huber: float = HUBER, flex_axes=None,
                off_axis_prior: float = OFF_AXIS_PRIOR):
    """Fit the local joint rotations and the translation of right hands to their landmarks.

    Parameters
    ----------
    keypoint_layer : :class:`~dahyf.hand.model.KeypointLayer` of the right hand model.
    rotmats : (B, 16, 3, 3) the network's local rotations (start and prior).
    betas : (B, 10), kept fixed.
    transl : (B, 3) m, camera frame, start and depth prior.
    landmarks2d : (B, 21, 2) px, image; image_size : (B, 2) px (W, H); focal : (B,) px.
    iterations : Gauss-Newton steps (0 returns the input).
    root_prior, finger_prior : λ of the rotation prior, fraction of the hand size per rad.
    depth_prior : λ_z, fraction of the hand size per relative depth change.
    huber : Huber threshold of a keypoint's 2-D residual, fraction of the hand size.
    flex_axes, off_axis_prior : (16, 3) the joints' flexion axes and λ_o (see :func:`prior_matrix`);
        without ``flex_axes`` the finger prior is isotropic (λ_f).

    Returns
    -------
    rotmats (B, 16, 3, 3), transl (B, 3) m, failed (B,) bool: rows whose fit could not be computed
    (a singular or non-finite system, or a non-finite result) keep the input ``rotmats`` / ``transl``.
    """
    xp = namespace(rotmats)
    B = rotmats.shape[0]
    failed = xp.zeros((B,), dtype=xp.bool, device=device(rotmats))
    if B == 0 or iterations <= 0:
        return rotmats, transl, failed
    dt, dev = rotmats.dtype, device(rotmats)
    R0, R, t = rotmats, rotmats, transl
    hand_size = xp.clip(landmark_hand_size(landmarks2d), min=1.0)
    depth = xp.clip(transl[:, 2], min=1e-2)
    prior = xp.asarray(prior_matrix(root_prior, finger_prior, depth_prior, flex_axes, off_axis_prior), dtype=dt, device=dev)
    eye = xp.eye(prior.shape[0], dtype=dt, device=dev)
    for _ in range(iterations):
        joints, kp, G = posed_keypoints(keypoint_layer, R, betas, t)
        r, J = residual_jacobian(kp, joints, G, landmarks2d, image_size, focal, hand_size, depth)
        # Huber IRLS weights per keypoint (both coordinates).
        norm = xp.linalg.vector_norm(xp.reshape(r, (B, NUM_KEYPOINTS, 2)), axis=-1)
        w = xp.where(norm <= huber, xp.ones_like(norm), huber / xp.clip(norm, min=1e-12))
        w = xp.repeat(w, 2, axis=1)                                                       # (B, 42)
        phi = xp.reshape(K.matrix_to_axis_angle(xp.matrix_transpose(R0) @ R), (B, 3 * NUM_JOINTS))
        phi = xp.astype(phi, dt)
        offset = xp.concat([phi, (t - transl) / depth[:, None]], axis=-1)               # (B, 51)
        Jw = J * w[..., None]
        A = xp.matrix_transpose(J) @ Jw + prior + 1e-6 * eye
        g = (xp.matrix_transpose(Jw) @ r[..., None])[..., 0] + (prior @ offset[..., None])[..., 0]
        delta = -solve_batched(A, g[..., None])[..., 0]
        bad = ~rows_finite(delta)
        failed = failed | bad
        delta = xp.where(bad[:, None], xp.zeros_like(delta), delta)
        d_rot = xp.reshape(delta[:, :3 * NUM_JOINTS], (B, NUM_JOINTS, 3))
        scale = xp.clip(MAX_STEP / xp.clip(xp.linalg.vector_norm(d_rot, axis=-1, keepdims=True), min=1e-12), max=1.0)
        R = R @ K.batch_rodrigues(d_rot * scale)
        t = t + delta[:, 3 * NUM_JOINTS:] * depth[:, None]
    failed = failed | ~rows_finite(R) | ~rows_finite(t)
    return xp.where(failed[:, None, None, None], R0, R), xp.where(failed[:, None], transl, t), failed
