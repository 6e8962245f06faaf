"""Contact preservation: where the captured fingertips touch, the target's touch too (pure numpy).

After pose matching (:mod:`rigs.handframe`) each target segment points where the source's does,
but different finger and palm proportions move the tips: a pinch that touches on the capture
opens by a third of a hand length on a character. This pass finds, per frame, the source's
contacts and moves the target's fingertips back into them by turning the joints of the fingers
concerned as little as possible (damped least squares), leaving every other finger as pose
matching set it:

- **pinch**: thumb tip near another fingertip. The target's tip-to-tip vector is made the
  source's, scaled by the hand-length ratio (each tip moves half way).
- **palm**: a fingertip near the palm (within the palm's outline, close to its plane). The target
  tip is brought to the source's height above the palm plane (scaled by hand length) — touching
  it — wherever on its palm its own finger proportions land it (forcing the source's spot on a
  hand with other proportions bends the fingers out of shape).

Weights fall smoothly from 1 (at or below ``on`` hand lengths) to 0 (at ``off``), so a contact
fades in and out without a pop. Everything is in hand coordinates (:class:`HandGeometry`),
vectorised over frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dahyf.hand.kinematics import batch_rodrigues, skew
from dahyf.hand.tables import FINGERS

from .handframe import HandGeometry

@dataclass(frozen=True)
class ContactOptions:
    """Thresholds in hand lengths, and the solver's effort."""

    pinch_on: float = 0.10
    pinch_off: float = 0.20
    palm_on: float = 0.12
    palm_off: float = 0.20
    iterations: int = 4
    twist_cost: float = 9.0
    damping: float = 1e-4
    max_step_deg: float = 15.0


def ramp(x, on: float, off: float) -> np.ndarray:
    """1 for x ≤ on, 0 for x ≥ off, smooth (cubic) in between."""
    t = np.clip((np.asarray(x, dtype=np.float64) - on) / (off - on), 0.0, 1.0)
    return 1.0 - t * t * (3.0 - 2.0 * t)


def source_goals(src: HandGeometry, D_src, tgt: HandGeometry, options: ContactOptions = ContactOptions()):
    """Target fingertip goals from the source's contacts.

    Parameters
    ----------
    src, tgt : the two rigs' geometry (hand coordinates); D_src : (F, J_s, 3, 3) source bones from rest.

    Returns
    -------
    goals : {finger: ((F, 3) goal in target hand coordinates, (F,) weight)} — 'pinch' goals are
        relative (the thumb-to-finger vector (F, 3), with the finger's name), 'palm' goals the tip's
        height above the palm plane (F,): ``{"pinch": {finger: (vec, w)}, "palm": {finger: (height, w)}}``.
    """
    _, ends = src.pose_points(D_src)
    tips = {f: ends[:, src.fingers[f][-1]] for f in FINGERS if src.fingers[f]}
    scale = tgt.length / src.length
    pinch = {}
    if "thumb" in tips:
        for f in FINGERS[1:]:
            if f in tips and tgt.fingers[f] and tgt.fingers["thumb"]:
                vec = tips["thumb"] - tips[f]
                w = ramp(np.linalg.norm(vec, axis=-1) / src.length, options.pinch_on, options.pinch_off)
                pinch[f] = (vec * scale, w)
    palm = {}
    span_y = sorted((src.knuckle("index")[1], src.knuckle("pinky")[1]))
    for f, tip in tips.items():
        if not tgt.fingers[f]:
            continue
        inside = ((tip[:, 0] > -0.1 * src.palm_length) & (tip[:, 0] < 1.1 * src.palm_length)
                  & (tip[:, 1] > span_y[0] - 0.25 * src.palm_width) & (tip[:, 1] < span_y[1] + 0.25 * src.palm_width))
        w = ramp(np.abs(tip[:, 2]) / src.length, options.palm_on, options.palm_off) * inside
        palm[f] = (tip[:, 2] * scale, w)
    return {"pinch": pinch, "palm": palm}


def _constraints(tgt: HandGeometry, D, goals):
    """Rows of the linear contact problem J ω = e at the current pose (hand lengths as unit).

    Returns J (F, m, 3·J_t) and e (F, m): pinch rows ask the thumb-to-finger vector to change by its
    error, palm rows the fingertip's height above the palm to become its goal, each scaled by the
    contact's weight; rows of
    frames without that contact are zero.
    """
    L = tgt.length
    heads, ends = tgt.pose_points(D)
    heads, ends = heads / L, ends / L
    F, n = len(D), len(tgt.joints)

    def tip_jacobian(f):  # d tip_f / d ω_j = skew(head_j - tip_f) for the joints of finger f
        idx = tgt.fingers[f]
        tip = ends[:, idx[-1]]
        Jf = np.zeros((F, 3, 3 * n))
        for i in idx:
            Jf[:, :, 3 * i:3 * i + 3] = skew(heads[:, i] - tip)
        return tip, Jf

    rows, rhs = [], []
    tips = {f: tip_jacobian(f) for f in FINGERS if tgt.fingers[f]}
    for f, (vec, w) in goals["pinch"].items():
        (t_thumb, J_thumb), (t_f, J_f) = tips["thumb"], tips[f]
        on = (w > 0)[:, None, None]
        rows.append(np.where(on, J_thumb - J_f, 0.0))
        rhs.append(np.where(on[..., 0], w[:, None] * (vec / L - (t_thumb - t_f)), 0.0))
    for f, (height, w) in goals["palm"].items():
        t_f, J_f = tips[f]
        on = (w > 0)[:, None, None]
        rows.append(np.where(on, J_f[:, 2:3], 0.0))  # the palm normal is the hand frame's third axis
        rhs.append(np.where(on[..., 0], w[:, None] * (height[:, None] / L - t_f[:, 2:3]), 0.0))
    return np.concatenate(rows, axis=1), np.concatenate(rhs, axis=1)


def contact_pass(D, tgt: HandGeometry, goals, options: ContactOptions = ContactOptions()) -> np.ndarray:
    """Bring the target's fingertips to the source's contacts, turning the joints as little as possible.

    Damped least squares on small joint rotations (each finger bone turning about its head and
    carrying the bones after it), twist about a segment's own axis costing ``twist_cost`` times more
    than bending, repeated ``iterations`` times.

    Parameters
    ----------
    D : (F, J_t, 3, 3) target bones from rest after pose matching (hand frame).
    tgt : the target's :class:`HandGeometry`; goals : :func:`source_goals`.

    Returns
    -------
    (F, J_t, 3, 3) corrected rotations (fingers without a contact unchanged).
    """
    D = np.array(D, dtype=np.float64, copy=True)
    active = np.zeros(len(D), dtype=bool)
    for kind in ("pinch", "palm"):
        for _, w in goals[kind].values():
            active |= w > 0
    if not active.any():
        return D
    sub = {k: {f: (v[active], w[active]) for f, (v, w) in goals[k].items()} for k in ("pinch", "palm")}
    Da = D[active]
    n = len(tgt.joints)
    for _ in range(options.iterations):
        J, e = _constraints(tgt, Da, sub)
        # Twist about each segment's posed axis costs more: ω_j = S_j u_j with S_j = I - c d dᵀ.
        d = np.einsum("fjab,jb->fja", Da, tgt.directions / np.linalg.norm(tgt.directions, axis=1, keepdims=True))
        c = 1.0 - 1.0 / np.sqrt(options.twist_cost)
        S = np.eye(3) - c * d[..., :, None] * d[..., None, :]  # (F, J, 3, 3)
        Sb = np.zeros((len(Da), 3 * n, 3 * n))
        for j in range(n):
            Sb[:, 3 * j:3 * j + 3, 3 * j:3 * j + 3] = S[:, j]
        A = J @ Sb
        m = A.shape[1]
        y = np.linalg.solve(A @ np.swapaxes(A, 1, 2) + options.damping * np.eye(m), e[..., None])
        omega = (Sb @ np.swapaxes(A, 1, 2) @ y)[..., 0].reshape(len(Da), n, 3)
        angle = np.linalg.norm(omega, axis=-1, keepdims=True)  # no joint turns more than max_step per pass
        omega *= np.minimum(1.0, np.radians(options.max_step_deg) / np.maximum(angle, 1e-12))
        R = batch_rodrigues(omega)
        for idx in tgt.fingers.values():
            for k, i in enumerate(idx):  # bone i turns with every joint at or before it
                for j in idx[:k + 1]:
                    Da[:, i] = R[:, j] @ Da[:, i]
    D[active] = Da
    return D
