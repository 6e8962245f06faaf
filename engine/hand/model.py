"""The hand model: one MANO forward (rotation matrices in, smplx's ``pose2rot=False`` idea), and ``load_hand_model``.

``HandModel(pose, betas, transl)`` follows MANO with ``flat_hand_mean=True``: θ = 0 is the flat
open hand, each of the 16 rotations is axis-angle about its joint, and the global orientation
rotates about the wrist. Works for real MANO files and the bundled open hand model alike.
:class:`KeypointLayer` is the same forward restricted to the 5 fingertip vertices (the cheap
21-keypoint path of the estimator, the refinement and the capture pipeline).

The model holds numpy arrays and computes in the library of its input (:mod:`dahyf.backend`):
numpy arrays give numpy results without importing torch; tensors give tensors (autograd, CUDA),
the model's arrays converted once per dtype and device.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..assets import open_hand_file
from ..backend import asarray_like, device, is_torch_array, namespace
from . import kinematics as K
from .mano_io import ModelFileError, load_mano_pkl, load_model_npz
from .tables import KEYPOINT_SOURCES, MANO_TIP_VERTEX_IDS, NUM_JOINTS, PARENTS, SIDES


@dataclass(frozen=True)
class HandOutput:
    """Result of a hand model call, all in metres, arrays of the input's library.

    vertices : (B, V, 3); joints : (B, 16, 3) MANO order; keypoints : (B, 21, 3) FreiHAND order.
    """

    vertices: object
    joints: object
    keypoints: object


class _Forward:
    """The MANO forward for a subset of the vertices, its arrays folded once (float64 masters).

    The rest joints are linear in β, so ``J_regressor`` is folded into ``j_template`` / ``j_shapedirs``.
    """

    def __init__(self, arrays: dict[str, np.ndarray], vertex_ids=None):
        a = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items() if k != "f"}
        V = a["v_template"].shape[0]
        ids = np.arange(V) if vertex_ids is None else np.asarray(vertex_ids, dtype=np.int64)
        posedirs = a["posedirs"].reshape(V, 3, -1)[ids]                  # (V', 3, 135)
        self.masters = {
            "j_template": a["J_regressor"] @ a["v_template"],              # (16, 3)
            "j_shapedirs": np.einsum("jv,vkl->jkl", a["J_regressor"], a["shapedirs"]),   # (16, 3, S)
            "v_template": a["v_template"][ids],                             # (V', 3)
            "shapedirs": a["shapedirs"][ids],                               # (V', 3, S)
            "posedirs": posedirs.reshape(-1, posedirs.shape[-1]).T.copy(),  # (135, V'·3)
            "weights": a["weights"][ids],                                   # (V', 16)
        }
        self._cache: dict = {}

    def buffers(self, like) -> dict:
        """The arrays in ``like``'s library, dtype and device (converted once, then cached)."""
        key = (type(like).__module__, str(like.dtype), str(device(like)))
        if key not in self._cache:
            self._cache[key] = {k: asarray_like(v, like, dtype=like.dtype) for k, v in self.masters.items()}
        return self._cache[key]

    def __call__(self, rot_mats, betas, transl=None):
        """rot_mats (B, 16, 3, 3), betas (B, S ≤ 10), transl (B, 3) m or None →
        joints (B, 16, 3) m, vertices (B, V', 3) m, transforms (B, 16, 4, 4)."""
        xp = namespace(rot_mats)
        b = self.buffers(rot_mats)
        B, S = rot_mats.shape[0], betas.shape[-1]
        rest = b["j_template"] + K.blend_shapes(betas, b["j_shapedirs"][..., :S])
        joints, transforms = K.forward_kinematics(rot_mats, rest, PARENTS)
        v = b["v_template"] + K.blend_shapes(betas, b["shapedirs"][..., :S])
        v = v + xp.reshape(K.pose_feature(rot_mats) @ b["posedirs"], v.shape)
        v = K.skin(v, b["weights"], transforms)
        if transl is not None:
            joints = joints + transl[:, None]
            v = v + transl[:, None]
        return joints, v, transforms


def _as_float_array(x, like=None):
    """Input coercion: to ``like``'s library and dtype; without ``like``, tensors and floating numpy
    arrays as they are, anything else as float32 numpy."""
    if like is not None:
        return asarray_like(x, like, dtype=like.dtype)
    if is_torch_array(x):
        return x if x.is_floating_point() else x.float()
    x = np.asarray(x)
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float32)


def _keypoints21(xp, joints, tips):
    """joints (B, 16, 3), tips (B, 5, 3) → (B, 21, 3) FreiHAND order."""
    return xp.concat([joints, tips], axis=1)[:, list(KEYPOINT_SOURCES)]


def _pose_rotmats(pose, pose2rot: bool):
    xp = namespace(pose)
    B = pose.shape[0]
    if pose2rot:
        return K.batch_rodrigues(xp.reshape(pose, (B, NUM_JOINTS, 3)))
    return xp.reshape(pose, (B, NUM_JOINTS, 3, 3))


class HandModel:
    """MANO-format hand: shape blend shapes, pose correctives, FK and LBS, fingertip keypoints.

    Parameters
    ----------
    arrays : the 9 MANO arrays (see ``mano_io.validate_model_arrays``).
    tip_vertex_ids : (5,) vertex index of each fingertip, thumb → pinky.
    side : 'right' or 'left'.
    name : where the model came from ('open', or a file path).
    """

    def __init__(self, arrays: dict[str, np.ndarray], tip_vertex_ids, side: str, name: str = "model"):
        if side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, got {side!r}")
        self.side = side
        self.name = name
        self._arrays = arrays
        self._faces = np.asarray(arrays["f"], dtype=np.int64)
        self.tip_vertex_ids = np.asarray(tip_vertex_ids, dtype=np.int64)
        self._full = _Forward(arrays)
        self._tips: _Forward | None = None

    # --- static facts -------------------------------------------------------------------------
    @property
    def faces(self) -> np.ndarray:
        """(F, 3) triangle vertex indices."""
        return self._faces

    @property
    def parents(self) -> tuple[int, ...]:
        """Parent of each of the 16 joints (-1 for the wrist)."""
        return PARENTS

    @property
    def num_vertices(self) -> int:
        return self._arrays["v_template"].shape[0]

    @property
    def v_template(self) -> np.ndarray:
        """(V, 3) m, the mean-shape rest vertices (float64)."""
        return np.asarray(self._arrays["v_template"], dtype=np.float64)

    @property
    def shapedirs(self) -> np.ndarray:
        """(V, 3, 10) m per unit β (float64)."""
        return np.asarray(self._arrays["shapedirs"][:, :, :10], dtype=np.float64)

    @property
    def lbs_weights(self) -> np.ndarray:
        """(V, 16) skin weights (float64)."""
        return np.asarray(self._arrays["weights"], dtype=np.float64)

    @property
    def rest_joints(self) -> np.ndarray:
        """(16, 3) m, joint positions of the mean shape in the flat rest pose."""
        return self._full.masters["j_template"].copy()

    def arrays(self) -> dict[str, np.ndarray]:
        """The 9 MANO-format arrays this model was built from (float64)."""
        return dict(self._arrays)

    def keypoint_layer(self) -> "KeypointLayer":
        """The 21-keypoint forward of this model (fingertip vertices only)."""
        return KeypointLayer(self)

    # --- evaluation ---------------------------------------------------------------------------
    def __call__(self, pose, betas=None, transl=None, pose2rot: bool = True) -> HandOutput:
        """Pose and shape the hand.

        Parameters
        ----------
        pose : (B, 16, 3) or (B, 48) rad axis-angle, flat_hand_mean convention; with
            ``pose2rot=False``, (B, 16, 3, 3) local rotation matrices. numpy array or tensor.
        betas : (B, S ≤ 10) shape coefficients, default zeros.
        transl : (B, 3) m, added to every output point, default none.

        Returns
        -------
        HandOutput of arrays in the input's library and dtype.
        """
        pose = _as_float_array(pose)
        xp = namespace(pose)
        rot = _pose_rotmats(pose, pose2rot)
        B = rot.shape[0]
        betas = xp.zeros((B, 10), dtype=rot.dtype, device=device(rot)) if betas is None else _as_float_array(betas, rot)
        transl = None if transl is None else xp.reshape(_as_float_array(transl, rot), (B, 3))
        joints, vertices, _ = self._full(rot, betas, transl)
        keypoints = _keypoints21(xp, joints, vertices[:, list(self.tip_vertex_ids)])
        return HandOutput(vertices=vertices, joints=joints, keypoints=keypoints)

    forward = __call__

    def to(self, *args, **kwargs) -> "HandModel":
        """Accepted for torch-style code: the model already computes in its input's dtype and device."""
        return self

    def double(self) -> "HandModel":
        """As :meth:`to`: float64 input gives float64 output (from float64 master arrays)."""
        return self

    def float(self) -> "HandModel":
        """As :meth:`to`: float32 input gives float32 output."""
        return self


class KeypointLayer:
    """The 16 joints and 21 keypoints of a :class:`HandModel` from rotation matrices, cheaply.

    The same forward as ``HandModel(rot, betas, transl, pose2rot=False)`` restricted to the 5
    fingertip vertices. Any library: numpy arrays or tensors in, the same out.
    """

    def __init__(self, hand_model: HandModel):
        self.side = hand_model.side
        self._forward = _Forward(hand_model.arrays(), hand_model.tip_vertex_ids)

    def __call__(self, rotmats, betas, transl=None):
        """rotmats (B, 16, 3, 3), betas (B, 10), transl (B, 3) m → joints (B, 16, 3), keypoints (B, 21, 3) m."""
        joints, keypoints, _ = self.posed(rotmats, betas, transl)
        return joints, keypoints

    def posed(self, rotmats, betas, transl=None):
        """:meth:`__call__` plus the joints' world transforms (B, 16, 4, 4) (rotation part = world rotation)."""
        joints, tips, transforms = self._forward(rotmats, betas, transl)
        return joints, _keypoints21(namespace(rotmats), joints, tips), transforms


def keypoint_function(hand_model: HandModel) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """``f(pose (N,16,3) rad, betas (N,10), transl (N,3) m) -> keypoints (N,21,3) m`` of a hand model.

    Uses the fingertip-only :class:`KeypointLayer` (same result as the full
    model's keypoints, a fraction of the cost), in float32 numpy.
    """
    layer = hand_model.keypoint_layer()

    def keypoints(pose, betas, transl):
        rot = K.batch_rodrigues(np.ascontiguousarray(pose, np.float32))
        _, kp = layer(rot, np.asarray(betas, np.float32), np.asarray(transl, np.float32))
        return kp.astype(np.float32)

    return keypoints


def _mano_file(folder: Path, side: str) -> Path:
    for name in (f"MANO_{side.upper()}.pkl", f"mano_{side}.pkl"):
        if (folder / name).is_file():
            return folder / name
    raise ModelFileError(
        f"no MANO_{side.upper()}.pkl in {folder}. Point to the folder that holds MANO_RIGHT.pkl and "
        "MANO_LEFT.pkl (from https://mano.is.tue.mpg.de), or use model='open' for the bundled open hand model."
    )


def load_hand_model(model: str | Path = "open", side: str = "right") -> HandModel:
    """Load a hand model.

    Parameters
    ----------
    model : 'open' for the bundled open hand model, a folder holding ``MANO_RIGHT.pkl`` /
        ``MANO_LEFT.pkl``, or the path of one ``.pkl`` / ``.npz`` MANO-format file.
    side : 'right' or 'left'.

    Raises
    ------
    ModelFileError
        With a message that says what to do, when the model cannot be found or read.
    """
    side = side.lower()
    if side not in SIDES:
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    if str(model) == "open":
        arrays, extras = load_model_npz(open_hand_file(side))
        return HandModel(arrays, extras["tip_vertex_ids"], side, name="open")
    path = Path(model).expanduser()
    if not path.exists():
        raise ModelFileError(
            f"hand model not found: {path}. Give the folder that holds MANO_RIGHT.pkl / MANO_LEFT.pkl "
            "(from https://mano.is.tue.mpg.de), a MANO-format .pkl / .npz file, or 'open' for the bundled model.")
    if path.is_dir():
        path = _mano_file(path, side)
    if path.suffix == ".npz":
        arrays, extras = load_model_npz(path)
        tips = extras.get("tip_vertex_ids", np.asarray(MANO_TIP_VERTEX_IDS))
    elif path.suffix == ".pkl":
        arrays = load_mano_pkl(path)
        tips = np.asarray(MANO_TIP_VERTEX_IDS)
        if side == "left":
            arrays = _fix_left_shapedirs(arrays, path.parent)
    else:
        raise ModelFileError(f"{path}: expected a MANO .pkl, a MANO-format .npz, a folder, or 'open'.")
    if np.max(tips) >= arrays["v_template"].shape[0]:
        raise ModelFileError(f"{path.name}: fingertip vertex ids exceed its {arrays['v_template'].shape[0]} vertices.")
    return HandModel(arrays, tips, side, name=str(path))


def _fix_left_shapedirs(arrays: dict[str, np.ndarray], folder: Path) -> dict[str, np.ndarray]:
    """Work around the published MANO_LEFT.pkl whose shapedirs x-component is not mirrored.

    Known issue of the released file (fixed the same way by HaMeR and others): when the left
    shapedirs' x-components equal the right model's, negate them.
    """
    right = folder / "MANO_RIGHT.pkl"
    if not right.is_file():
        return arrays
    try:
        r = load_mano_pkl(right)
    except ModelFileError:
        return arrays
    if r["shapedirs"].shape == arrays["shapedirs"].shape and np.abs(arrays["shapedirs"][:, 0] - r["shapedirs"][:, 0]).sum() < 1:
        arrays = dict(arrays)
        arrays["shapedirs"] = arrays["shapedirs"].copy()
        arrays["shapedirs"][:, 0] *= -1
    return arrays
