"""MANO hand layer: tables, kinematics, model loading (real MANO and the open hand model), mirroring."""
from .mano_io import ModelFileError
from .mirror import mirror_points, mirror_pose
from .model import HandModel, HandOutput, load_hand_model

__all__ = ["HandModel", "HandOutput", "ModelFileError", "load_hand_model", "mirror_pose", "mirror_points"]
