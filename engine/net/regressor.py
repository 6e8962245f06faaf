"""The DaHyF regressor: an MLP from the joint encoding to θ (6-D rotations), β and a weak camera.

6-D rotation representation after Zhou et al., "On the Continuity of Rotation Representations in
Neural Networks" (CVPR 2019): the first two columns of the rotation matrix, re-orthonormalised by
Gram-Schmidt.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..hand.tables import NUM_JOINTS

#: Typical weak-perspective scale of a hand filling its crop (normalised crop units per metre).
MEAN_WEAK_SCALE = 10.0


def rot6d_to_matrix(x: torch.Tensor) -> torch.Tensor:
    """6-D rotation representation to rotation matrices.

    Parameters
    ----------
    x : (..., 6), the two first columns (a1, a2) of the matrix, unnormalised.

    Returns
    -------
    (..., 3, 3), columns b1 = a1/|a1|, b2 = a2 − (b1·a2) b1 normalised, b3 = b1 × b2.
    """
    a1, a2 = x[..., 0:3], x[..., 3:6]
    b1 = nn.functional.normalize(a1, dim=-1)
    b2 = nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rot6d(R: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) to the 6-D representation (..., 6) (first two columns)."""
    return torch.cat([R[..., :, 0], R[..., :, 1]], dim=-1)


def rotation_distance(R1: torch.Tensor, R2: torch.Tensor) -> torch.Tensor:
    """Geodesic angle between rotations, (..., 3, 3) × (..., 3, 3) → (...,) rad."""
    tr = (R1.transpose(-1, -2) @ R2).diagonal(dim1=-2, dim2=-1).sum(-1)
    return torch.acos(((tr - 1) / 2).clamp(-1 + 1e-7, 1 - 1e-7))


class ResidualBlock(nn.Module):
    """x + Linear(ReLU(Linear(LayerNorm(x))))."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(torch.relu(self.fc1(self.norm(x))))


class Regressor(nn.Module):
    """MLP → (θ as 16 rotation matrices, β, weak camera (s, t_x, t_y)).

    Parameters
    ----------
    in_dim : size of the input feature vector.
    width : hidden width; depth : number of residual blocks.
    """

    def __init__(self, in_dim: int, width: int = 512, depth: int = 3):
        super().__init__()
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
        h = self.norm(self.blocks(torch.relu(self.inp(x))))
        rot = rot6d_to_matrix(self.head_rot(h).reshape(-1, NUM_JOINTS, 6))
        betas = self.head_betas(h)
        cam = self.head_cam(h)
        s = MEAN_WEAK_SCALE * torch.exp(cam[:, :1].clamp(max=math.log(1e3)))
        return rot, betas, torch.cat([s, cam[:, 1:]], dim=-1)
