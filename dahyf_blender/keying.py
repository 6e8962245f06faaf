"""Keying a take onto a hand rig: MANO rotations → pose-bone quaternions, written in bulk.

The maths (top half) is plain numpy so that it is testable and fast. The writer (bottom half)
creates one Action per take and fills each F-curve with ``keyframe_points.foreach_set``, never
one ``keyframe_insert`` per key (DESIGN.md §5).

Local-frame conversion: MANO's pose θ_j is the rotation of joint j relative to its parent,
expressed in the canonical (armature) frame. A Blender pose bone rotates in its own rest frame
B_j (the bone's 3×3 rest matrix in armature space), so its local rotation is
``R_local = B_j⁻¹ · R_j · B_j``, and the wrist location is ``B_0⁻¹ · transl``.
"""
from __future__ import annotations

import numpy as np

from dahyf.hand import quaternion as Q

from . import compat

#: Custom property keyed with the per-frame confidence (0..1) of the capture.
CONFIDENCE_PROP = "dahyf_confidence"
#: Key type of filled (low-confidence, held) frames, visible on the timeline and dope sheet.
FILLED_KEY_TYPE = "MOVING_HOLD"
NORMAL_KEY_TYPE = "KEYFRAME"
#: The channel that shows a hand only on its captured frames: the wrist bone's scale (the root: the whole
#: rig and its skinned mesh follow), 1 on captured frames and :data:`HIDDEN_SCALE` elsewhere.
VISIBILITY_PATH = 'pose.bones["wrist"].scale'
#: Wrist scale of a hidden hand: 0.2 mm of hand shrinks to 20 µm (invisible), while every bone matrix
#: stays invertible (exporters, retargeting and constraints read rotations from it; 0 breaks them).
HIDDEN_SCALE = 1e-4


def make_continuous(q: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Flip signs along axis 0 so that consecutive quaternions lie in the same hemisphere.

    q and -q are the same rotation; without this, interpolating between keys can take the long
    way round. (N, ..., 4) → (N, ..., 4). The first quaternion follows ``reference`` (..., 4)
    when given (the last key already written), else it gets w ≥ 0.
    """
    q = np.array(q, dtype=np.float64, copy=True)
    if len(q) == 0:
        return q
    if reference is None:
        q[0] = np.where(q[0][..., :1] < 0, -q[0], q[0])
    else:
        q[0] = np.where(np.sum(q[0] * reference, axis=-1, keepdims=True) < 0, -q[0], q[0])
    for i in range(1, len(q)):
        flip = np.sum(q[i] * q[i - 1], axis=-1, keepdims=True) < 0
        q[i] = np.where(flip, -q[i], q[i])
    return q


def local_quaternions(pose: np.ndarray, bone_rest: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    """MANO pose → pose-bone rotation_quaternion of each bone: ``B⁻¹ · R · B``.

    Parameters
    ----------
    pose : (N, 16, 3) rad, MANO axis-angle (flat_hand_mean), joint-relative, canonical frame.
    bone_rest : (16, 4) unit quaternions of the bones' rest orientations in armature space.
    previous : (16, 4) the last key already written (keeps the sign continuous across chunks).

    Returns
    -------
    (N, 16, 4) unit quaternions (w, x, y, z), sign-continuous along N.
    """
    R = Q.from_axis_angle(np.asarray(pose, dtype=np.float64).reshape(-1, 16, 3))
    q = Q.multiply(Q.multiply(Q.conjugate(bone_rest)[None], R), bone_rest[None])
    return make_continuous(q, previous)


def local_locations(transl: np.ndarray, wrist_rest: np.ndarray) -> np.ndarray:
    """Take translation → wrist pose-bone location: ``B_0⁻¹ · transl``.

    Parameters
    ----------
    transl : (N, 3) m, camera (armature) frame.
    wrist_rest : (4,) unit quaternion of the wrist bone's rest orientation.

    Returns
    -------
    (N, 3) m in the wrist bone's rest frame.
    """
    transl = np.asarray(transl, dtype=np.float64).reshape(-1, 3)
    return Q.rotate(np.broadcast_to(Q.conjugate(wrist_rest), transl.shape[:-1] + (4,)), transl)


# --- writing F-curves ----------------------------------------------------------------------------
def _enum_index(prop_owner, prop: str, name: str) -> int:
    return prop_owner.bl_rna.properties[prop].enum_items[name].value


def write_keys(fc, frames: np.ndarray, values: np.ndarray, filled: np.ndarray | None = None,
               interpolation: str = "LINEAR") -> None:
    """Replace the keys of F-curve ``fc`` by (frames, values), in bulk.

    Parameters
    ----------
    fc : bpy.types.FCurve.
    frames : (N,) scene frames (increasing).
    values : (N,) key values.
    filled : (N,) bool, keys drawn as :data:`FILLED_KEY_TYPE` (default none).
    interpolation : Blender interpolation enum name for every key.
    """
    import bpy

    n = len(frames)
    kp = fc.keyframe_points
    have = len(kp)
    if have < n:
        kp.add(n - have)
    elif have > n:
        for _ in range(have - n):
            kp.remove(kp[-1], fast=True)
    co = np.empty(2 * n, dtype=np.float32)
    co[0::2] = frames
    co[1::2] = values
    kp.foreach_set("co", co)
    kp.foreach_set("handle_left", co)
    kp.foreach_set("handle_right", co)
    kp.foreach_set("interpolation", np.full(n, _enum_index(bpy.types.Keyframe, "interpolation", interpolation), dtype=np.int32))
    key_type = np.full(n, _enum_index(bpy.types.Keyframe, "type", NORMAL_KEY_TYPE), dtype=np.int32)
    if filled is not None:
        key_type[np.asarray(filled, dtype=bool)] = _enum_index(bpy.types.Keyframe, "type", FILLED_KEY_TYPE)
    kp.foreach_set("type", key_type)
    fc.update()


def visibility_keys(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keys of a visibility channel that shows a hand only on the frames it was captured.

    Parameters
    ----------
    frames : (N,) scene frames with captured rows (sorted, unique).

    Returns
    -------
    key_frames : (K,) frames; hidden : (K,) 1.0 = hidden, 0.0 = shown (constant interpolation):
    hidden from the frame before each run of consecutive frames, shown during it, hidden after.
    """
    frames = np.asarray(frames, dtype=np.int64)
    if len(frames) == 0:
        return np.zeros(0), np.zeros(0)
    breaks = np.nonzero(np.diff(frames) > 1)[0]
    starts = np.r_[frames[0], frames[breaks + 1]]
    ends = np.r_[frames[breaks], frames[-1]]
    keys: dict[int, float] = {}
    for a, b in zip(starts.tolist(), ends.tolist()):
        keys.setdefault(a - 1, 1.0)
        keys[a] = 0.0
        keys[b + 1] = 1.0
    k = np.array(sorted(keys), dtype=np.float64)
    return k, np.array([keys[int(f)] for f in k])


def write_visibility(owner, frames: np.ndarray) -> None:
    """Key the hand's visibility (``owner``: its rig's Action or channelbag): scale 1 on ``frames``,
    :data:`HIDDEN_SCALE` elsewhere, on :data:`VISIBILITY_PATH`.

    A scale, not ``hide_viewport``/``hide_render``: an object hidden on the current frame cannot be
    selected, so exports of the selection (glTF, FBX) came out empty. A bone's scale is animation
    that glTF, FBX and BVH carry like its rotation (BVH has no scale and keeps the rotations), while
    the exported rest pose stays the armature's own.
    """
    key_frames, hidden = visibility_keys(frames)
    for i in range(3):
        fc = (next((f for f in owner.fcurves if f.data_path == VISIBILITY_PATH and f.array_index == i), None)
              or compat.new_fcurve(owner, VISIBILITY_PATH, i, "Visibility"))
        write_keys(fc, key_frames, np.where(hidden > 0, HIDDEN_SCALE, 1.0), interpolation="CONSTANT")


class TrackKeyer:
    """Keys one hand track onto one armature, chunk after chunk, into a new Action.

    :meth:`append` adds frames; the F-curves are rewritten in bulk (``foreach_set``, the whole
    curve) whenever the keyed length has grown by :attr:`GROWTH` since the last write, so a
    stream of chunks costs O(frames) in total; :meth:`flush` writes the rest (call it at the end).
    The armature's bones must be named by :data:`dahyf.hand.tables.BONE_NAMES` and be in
    quaternion rotation mode. ``visibility``: also key :data:`VISIBILITY_PATH` so that the hand
    shows only on its keyed frames (captures and imports do; a live rig stays visible).
    """

    #: Rewrite the curves when the frames held reach this factor times the frames written.
    GROWTH = 1.5

    def __init__(self, arm_obj, action_name: str, bone_names, bone_rest: np.ndarray, key_location: bool = True,
                 visibility: bool = False):
        import bpy

        self.obj = arm_obj
        self.bone_names = tuple(bone_names)
        self.bone_rest = np.asarray(bone_rest, dtype=np.float64)
        self.key_location = key_location
        self.action = bpy.data.actions.new(action_name)
        self.action.use_fake_user = False
        if CONFIDENCE_PROP not in arm_obj:
            arm_obj[CONFIDENCE_PROP] = 1.0
            ui = arm_obj.id_properties_ui(CONFIDENCE_PROP)
            ui.update(min=0.0, max=1.0, description="DaHyF capture confidence of this frame (0-1)")
        owner = compat.assign_action(arm_obj, self.action)
        self._rot = [[compat.new_fcurve(owner, f'pose.bones["{b}"].rotation_quaternion', i, b) for i in range(4)]
                     for b in self.bone_names]
        self._loc = ([compat.new_fcurve(owner, f'pose.bones["{self.bone_names[0]}"].location', i, self.bone_names[0])
                      for i in range(3)] if key_location else [])
        self._conf = compat.new_fcurve(owner, f'["{CONFIDENCE_PROP}"]', 0, "DaHyF")
        self._owner = owner
        self.visibility = visibility
        self.frames = np.zeros(0)
        self.quats = np.zeros((0, len(self.bone_names), 4))
        self.locs = np.zeros((0, 3))
        self.conf = np.zeros(0)
        self.filled = np.zeros(0, dtype=bool)
        self._written = 0

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    def append(self, frames, pose, transl, confidence, filled, write: bool | None = None) -> None:
        """Add captured frames (and write the F-curves when due, or when ``write`` is True).

        Parameters
        ----------
        frames : (n,) scene frames, after the ones already keyed.
        pose : (n, 16, 3) rad MANO axis-angle.
        transl : (n, 3) m camera frame.
        confidence : (n,) 0..1.
        filled : (n,) bool, frames replaced by the last confident pose.
        write : True: write now; False: not now; None: when the growth rule says so.
        """
        frames = np.asarray(frames, dtype=np.float64).reshape(-1)
        if len(frames) == 0:
            return
        prev = self.quats[-1] if len(self.quats) else None
        q = local_quaternions(pose, self.bone_rest, prev)
        self.frames = np.concatenate([self.frames, frames])
        self.quats = np.concatenate([self.quats, q])
        self.locs = np.concatenate([self.locs, local_locations(transl, self.bone_rest[0])])
        self.conf = np.concatenate([self.conf, np.asarray(confidence, dtype=np.float64).reshape(-1)])
        self.filled = np.concatenate([self.filled, np.asarray(filled, dtype=bool).reshape(-1)])
        if write or (write is None and len(self.frames) >= self.GROWTH * self._written):
            self.flush()

    def flush(self) -> None:
        """Write all accumulated keys to the F-curves (bulk, one call per channel)."""
        if self._written == len(self.frames) and self._written:
            return
        self._written = len(self.frames)
        for b, curves in enumerate(self._rot):
            for i, fc in enumerate(curves):
                write_keys(fc, self.frames, self.quats[:, b, i], self.filled)
        for i, fc in enumerate(self._loc):
            write_keys(fc, self.frames, self.locs[:, i], self.filled)
        write_keys(self._conf, self.frames, self.conf, self.filled)
        if self.visibility:
            write_visibility(self._owner, self.frames)
