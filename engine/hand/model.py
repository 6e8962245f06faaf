"""The hand model: a thin ``nn.Module`` over the pure kinematics, and ``load_hand_model``.

``HandModel(pose, betas, transl)`` follows MANO with ``flat_hand_mean=True``: θ = 0 is the flat
open hand, each of the 16 rotations is axis-angle about its joint, and the global orientation
rotates about the wrist. Works for real MANO files and the bundled open hand model alike.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import kinematics as K
from .mano_io import ModelFileError, load_mano_pkl, load_model_npz
from .tables import KEYPOINT_SOURCES, MANO_TIP_VERTEX_IDS, NUM_JOINTS, PARENTS

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SIDES = ("right", "left")


@dataclass(frozen=True)
class HandOutput:
    """Result of a hand model call, all in metres.

    vertices : (B, V, 3); joints : (B, 16, 3) MANO order; keypoints : (B, 21, 3) FreiHAND order.
    """

    vertices: torch.Tensor
    joints: torch.Tensor
    keypoints: torch.Tensor


class HandModel(nn.Module):
    """MANO-format hand: shape blend shapes, pose correctives, FK and LBS, fingertip keypoints.

    Parameters
    ----------
    arrays : the 9 MANO arrays (see ``mano_io.validate_model_arrays``).
    tip_vertex_ids : (5,) vertex index of each fingertip, thumb → pinky.
    side : 'right' or 'left'.
    name : where the model came from ('open', or a file path).
    """

    def __init__(self, arrays: dict[str, np.ndarray], tip_vertex_ids, side: str, name: str = "model"):
        super().__init__()
        if side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, got {side!r}")
        self.side = side
        self.name = name
        V = arrays["v_template"].shape[0]
        f32 = torch.float32
        self.register_buffer("v_template", torch.tensor(arrays["v_template"], dtype=f32))
        self.register_buffer("shapedirs", torch.tensor(arrays["shapedirs"][:, :, :10], dtype=f32))
        self.register_buffer("posedirs", torch.tensor(arrays["posedirs"].reshape(V * 3, -1).T, dtype=f32))
        self.register_buffer("J_regressor", torch.tensor(arrays["J_regressor"], dtype=f32))
        self.register_buffer("lbs_weights", torch.tensor(arrays["weights"], dtype=f32))
        self.register_buffer("tip_vertex_ids", torch.as_tensor(np.asarray(tip_vertex_ids), dtype=torch.long))
        self._faces = np.asarray(arrays["f"], dtype=np.int64)
        self._arrays = arrays

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
        return self.v_template.shape[0]

    @property
    def rest_joints(self) -> np.ndarray:
        """(16, 3) m, joint positions of the mean shape in the flat rest pose."""
        return (self.J_regressor @ self.v_template).detach().cpu().numpy().astype(np.float64)

    def arrays(self) -> dict[str, np.ndarray]:
        """The 9 MANO-format arrays this model was built from (float64)."""
        return dict(self._arrays)

    # --- evaluation ---------------------------------------------------------------------------
    def forward(self, pose: torch.Tensor, betas: torch.Tensor | None = None,
                transl: torch.Tensor | None = None) -> HandOutput:
        """Pose and shape the hand.

        Parameters
        ----------
        pose : (B, 16, 3) or (B, 48) rad, axis-angle, flat_hand_mean convention.
        betas : (B, 10) shape coefficients, default zeros.
        transl : (B, 3) m, added to every output point, default zeros.
        """
        pose = torch.as_tensor(pose)
        if not pose.is_floating_point():
            pose = pose.float()
        B = pose.shape[0]
        pose = pose.reshape(B, NUM_JOINTS, 3)
        dtype, device = pose.dtype, pose.device
        buf = {n: b.to(device=device, dtype=dtype if b.is_floating_point() else b.dtype)
               for n, b in self.named_buffers()}
        if betas is None:
            betas = torch.zeros(B, buf["shapedirs"].shape[-1], dtype=dtype, device=device)
        betas = torch.as_tensor(betas, dtype=dtype, device=device)
        v_shaped = buf["v_template"] + K.blend_shapes(betas, buf["shapedirs"][..., : betas.shape[-1]])
        rest_joints = torch.einsum("jv,bvk->bjk", buf["J_regressor"], v_shaped)
        rot_mats = K.batch_rodrigues(pose)
        v_posed = v_shaped + (K.pose_feature(rot_mats) @ buf["posedirs"]).reshape(v_shaped.shape)
        joints, transforms = K.forward_kinematics(rot_mats, rest_joints, PARENTS)
        vertices = K.skin(v_posed, buf["lbs_weights"], transforms)
        if transl is not None:
            transl = torch.as_tensor(transl, dtype=dtype, device=device).reshape(B, 1, 3)
            vertices = vertices + transl
            joints = joints + transl
        tips = vertices[:, buf["tip_vertex_ids"]]
        keypoints = torch.cat([joints, tips], dim=1)[:, list(KEYPOINT_SOURCES)]
        return HandOutput(vertices=vertices, joints=joints, keypoints=keypoints)


def _mano_file(folder: Path, side: str) -> Path:
    for name in (f"MANO_{side.upper()}.pkl", f"mano_{side}.pkl"):
        if (folder / name).is_file():
            return folder / name
    raise ModelFileError(
        f"no MANO_{side.upper()}.pkl in {folder}. Point to the folder that holds MANO_RIGHT.pkl and "
        "MANO_LEFT.pkl (from https://mano.is.tue.mpg.de), or use model='open' for the bundled open hand model."
    )


def load_hand_model(model: str | Path = "open", side: str = "right", device: str | torch.device | None = None) -> HandModel:
    """Load a hand model.

    Parameters
    ----------
    model : 'open' for the bundled open hand model, a folder holding ``MANO_RIGHT.pkl`` /
        ``MANO_LEFT.pkl``, or the path of one ``.pkl`` / ``.npz`` MANO-format file.
    side : 'right' or 'left'.
    device : where to put the buffers (default CPU).

    Raises
    ------
    ModelFileError
        With a message that says what to do, when the model cannot be found or read.
    """
    side = side.lower()
    if side not in SIDES:
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    if str(model) == "open":
        path = ASSETS / f"open_hand_{side}.npz"
        arrays, extras = load_model_npz(path)
        hand = HandModel(arrays, extras["tip_vertex_ids"], side, name="open")
    else:
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
        hand = HandModel(arrays, tips, side, name=str(path))
    return hand.to(device) if device is not None else hand


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
