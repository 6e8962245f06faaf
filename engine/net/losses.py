"""The DaHyF training loss (DESIGN.md §3): L = L_backbone + L_c.

L_backbone = Σ_k exp(−s_k) L_k + s_k over the tasks k ∈ {2d, 3d, 2d_proj, mano, bone}, with
s_k = log σ_k² learned (homoscedastic uncertainty weighting, Kendall et al., CVPR 2018).

* L_2d      : SimCC KL (SJCP rows) or heatmap L2 (heatmap rows) of the 2-D joints.
* L_3d      : L1 of root-relative 3-D joints, m.
* L_2d_proj : L1 of the projected joints vs the 2-D ground truth, in units of the crop side s_i.
* L_mano    : L2 on θ (as rotation matrices: no axis-angle wrap-around) and β, where MANO labels exist.
* L_bone    : L1 of the 20 bone lengths, m.
* L_c       : contrastive loss of the projection confidence c (Hadsell et al., CVPR 2006, on the
  cosine distance d = 1 − c): hand crops are pulled together (d² → 0, c → 1), non-hand crops are pushed
  apart up to a margin m (max(0, m − d)²; m = 1: c ≤ 0). Switched on by the trainer for the last epochs only.

Only L_c sees negative (non-hand) samples; every other term is masked by ``is_hand`` (and by the
sample having that label). Every term is a mean over the whole batch — masked samples count as zero —
so that N DDP processes × B/N samples give exactly the loss of one process × B.
"""
from __future__ import annotations

import torch
from torch import nn

from ..hand.kinematics import batch_rodrigues
from ..hand.tables import KEYPOINT_BONES
from .heatmap import heatmap_encode, heatmap_loss
from .simcc import at_least_float32 as f32, simcc_encode, simcc_kl_loss

TASKS = ("2d", "3d", "2d_proj", "mano", "bone")


def _masked_mean(per_sample: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B,) per-sample losses, (B,) 0/1 mask → () their masked sum over the batch size B."""
    return (per_sample * f32(mask)).sum() / max(per_sample.shape[0], 1)


def bone_lengths(joints: torch.Tensor) -> torch.Tensor:
    """(B, 21, 3) → (B, 20) lengths of KEYPOINT_BONES, same unit."""
    p, c = zip(*KEYPOINT_BONES)
    return (joints[:, list(c)] - joints[:, list(p)]).norm(dim=-1)


def task_losses(out: dict, batch: dict, cfg) -> dict[str, torch.Tensor]:
    """Unweighted task losses of one batch (each a scalar tensor).

    out : the network output; batch : dict with ``joints2d`` (B,21,2) crop px, ``joints2d_img`` (B,21,2)
    image px, ``joints3d`` (B,21,3) m, ``rotmats`` or ``pose`` (B,16,3), ``betas`` (B,10), ``box`` (B,3),
    ``is_hand``, ``has_joints3d``, ``has_mano`` (B,) 0/1.
    """
    pos = f32(batch["is_hand"])
    has3d = f32(batch.get("has_joints3d", pos)) * pos
    hasmano = f32(batch.get("has_mano", pos)) * pos
    L: dict[str, torch.Tensor] = {}
    gt2d = f32(batch["joints2d"])
    if "simcc_x" in out:
        lx, ly = simcc_encode(gt2d, cfg.crop_size, cfg.split_ratio, cfg.sigma_px)
        L["2d"] = simcc_kl_loss(out["simcc_x"], out["simcc_y"], lx, ly, pos, denominator=pos.numel() * gt2d.shape[1])
    elif "heatmaps" in out:
        tgt = heatmap_encode(gt2d, out["heatmaps"].shape[-1], cfg.crop_size)  # L2 on Gaussian maps (SimpleBaseline)
        L["2d"] = heatmap_loss(out["heatmaps"], tgt, pos, denominator=pos.numel() * gt2d.shape[1])
    pj, gj = out["joints3d"], f32(batch["joints3d"])
    L["3d"] = _masked_mean(((pj - pj[:, :1]) - (gj - gj[:, :1])).abs().mean(dim=(1, 2)), has3d)
    side = f32(batch["box"][:, 2])[:, None, None]
    L["2d_proj"] = _masked_mean(((out["joints2d_proj"] - f32(batch["joints2d_img"])) / side).abs().mean(dim=(1, 2)), pos)
    gt_rot = batch_rodrigues(f32(batch["pose"]))
    mano = ((out["rotmats"] - gt_rot) ** 2).mean(dim=(1, 2, 3)) + ((out["betas"] - f32(batch["betas"])) ** 2).mean(1)
    L["mano"] = _masked_mean(mano, hasmano)
    L["bone"] = _masked_mean((bone_lengths(pj) - bone_lengths(gj)).abs().mean(1), has3d)
    return L


#: Contrastive margin on the cosine distance d = 1 − c: negatives are pushed to d ≥ m (c ≤ 1 − m).
CONTRASTIVE_MARGIN = 1.0


def contrastive_loss(confidence: torch.Tensor, is_hand: torch.Tensor, margin: float = CONTRASTIVE_MARGIN) -> torch.Tensor:
    """L_c = mean[y d² + (1 − y) max(0, m − d)²] with d = 1 − c.

    confidence : (B,) cosine similarity c ∈ [−1, 1]; is_hand : (B,) y, 1 for hand crops, 0 for non-hand crops.
    Returns () — 0 when every hand has c = 1 and every non-hand crop has c ≤ 1 − m.
    """
    d = 1.0 - f32(confidence)
    y = f32(is_hand)
    return (y * d**2 + (1 - y) * torch.clamp(margin - d, min=0.0) ** 2).mean()


class DaHyFLoss(nn.Module):
    """Homoscedastic-uncertainty weighted sum of the task losses, plus L_c when enabled.

    The learned ``log_vars`` (s_k = log σ_k²) are parameters: give them to the optimiser.
    """

    def __init__(self, cfg, tasks: tuple[str, ...] = TASKS, contrastive_margin: float = CONTRASTIVE_MARGIN):
        super().__init__()
        self.cfg = cfg
        self.tasks = tasks
        self.contrastive_margin = contrastive_margin
        self.log_vars = nn.ParameterDict({k: nn.Parameter(torch.zeros(())) for k in tasks})

    def forward(self, out: dict, batch: dict, use_contrastive: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
        """Returns (total loss, dict of the unweighted terms and ``task_sum`` = their plain sum)."""
        L = task_losses(out, batch, self.cfg)
        total = out["joints3d"].new_zeros(())
        for k, v in L.items():
            s = self.log_vars[k]
            total = total + torch.exp(-s) * v + s
        logs = {k: float(v.detach()) for k, v in L.items()}
        logs["task_sum"] = float(sum(v.detach() for v in L.values()))
        if use_contrastive and self.cfg.contrastive:
            lc = contrastive_loss(out["confidence"], batch["is_hand"], self.contrastive_margin)
            total = total + lc
            logs["c"] = float(lc.detach())
        return total, logs
