"""torch ``nn.Module`` shells around the array-API forwards, for training (gradients) and CUDA.

They hold the parameters and call the same functions the numpy capture runtime calls
(:func:`dahyf.net.regressor.regressor_forward`, :func:`dahyf.net.landmark.landmark_forward`), so the
two cannot drift. Their state-dict names are the weight names of the checkpoints.
"""
from __future__ import annotations

import torch
from torch import nn

from ..hand.tables import NUM_JOINTS, NUM_KEYPOINTS
from .landmark import LandmarkConfig, landmark_forward
from .regressor import matrix_to_rot6d, regressor_forward


class ResidualBlock(nn.Module):
    """x + Linear(ReLU(Linear(LayerNorm(x)))) (parameters only; the forward is :func:`regressor_forward`)."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)


class Regressor(nn.Module):
    """MLP → (θ as 16 rotation matrices, β, weak camera (s, t_x, t_y)); see :func:`regressor_forward`.

    Parameters
    ----------
    in_dim : size of the input feature vector.
    width : hidden width; depth : number of residual blocks.
    """

    def __init__(self, in_dim: int, width: int = 512, depth: int = 3):
        super().__init__()
        self.depth = depth
        self.inp = nn.Linear(in_dim, width)
        self.blocks = nn.Sequential(*[ResidualBlock(width) for _ in range(depth)])
        self.norm = nn.LayerNorm(width)
        self.head_rot = nn.Linear(width, NUM_JOINTS * 6)
        self.head_betas = nn.Linear(width, 10)
        self.head_cam = nn.Linear(width, 3)
        with torch.no_grad():
            for head in (self.head_rot, self.head_betas, self.head_cam):
                head.weight.mul_(0.01)
                head.bias.zero_()
            self.head_rot.bias.copy_(matrix_to_rot6d(torch.eye(3)).repeat(NUM_JOINTS))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x : (B, in_dim) → rotmats (B, 16, 3, 3), betas (B, 10), weak_cam (B, 3) with s > 0."""
        return regressor_forward(dict(self.named_parameters()), x, self.depth)


class LandmarkDaHyF(nn.Module):
    """Landmarks → θ, β, weak camera, full-perspective translation (right hands); see
    :func:`dahyf.net.landmark.landmark_forward` for the features and outputs."""

    def __init__(self, config: LandmarkConfig = LandmarkConfig()):
        super().__init__()
        self.config = config
        self.regressor = Regressor(config.in_dim, config.width, config.depth)
        if config.landmark_map:   # stored with the weights; set from the calibration before saving
            self.register_buffer("landmark_map", torch.eye(NUM_KEYPOINTS))

    def forward(self, landmarks2d: torch.Tensor, image_size: torch.Tensor, focal: torch.Tensor,
                world: torch.Tensor | None = None, world_present: torch.Tensor | None = None) -> dict:
        """landmarks2d (B, 21, 2) px (model keypoint convention), image_size (B, 2) px, focal (B,) px,
        world (B, 21, 3) m and world_present (B,) bool (networks with ``config.world``) → the dict of
        :func:`landmark_forward`."""
        return landmark_forward(dict(self.named_parameters()), self.config, landmarks2d, image_size, focal,
                                world, world_present)

