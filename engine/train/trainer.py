"""Trainer of the DaHyF image network: AMP, checkpoint / resume, and multi-GPU DDP via ``torchrun``.

Under ``torchrun`` (``WORLD_SIZE`` > 1) each process joins a process group — ``nccl`` on CUDA, ``gloo``
on CPU — takes its share of the global batch from a ``DistributedSampler`` and gradients are averaged
by ``DistributedDataParallel``. Because the light backbone uses GroupNorm and every loss is a per-sample
mean, N processes × (B/N) give the same update as one process × B. (ResNet-50 / HRNet use BatchNorm;
under DDP on CUDA they are converted to SyncBatchNorm.)

``out/last.pt`` (every epoch, atomically) holds weights, optimiser, scheduler, scaler, epoch and history;
training resumes from it. ``out/model.npz`` is the inference checkpoint (kind 'dahyf'), loadable by
``dahyf.load_engine(path)``. The command line is :mod:`dahyf.train.net_command`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from ..net.dahyf_net import DaHyF, save_dahyf
from ..net.losses import DaHyFLoss
from .configs import TrainConfig
from .datasets import count_negatives


class _TrainModule(nn.Module):
    """Network + loss (its learned log σ² are parameters too), so DDP averages all gradients."""

    def __init__(self, net: DaHyF, loss: DaHyFLoss):
        super().__init__()
        self.net, self.loss = net, loss

    def forward(self, batch: dict, use_contrastive: bool):
        out = self.net(batch["image"], batch["box"], batch["image_size"], batch["focal"])
        with torch.autocast(device_type=batch["image"].device.type, enabled=False):  # losses in full precision
            total, logs = self.loss(out, batch, use_contrastive)
        return total, logs


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local


def setup_distributed(device: str) -> tuple[int, int, torch.device]:
    """Join the torchrun process group when WORLD_SIZE > 1 → (world, rank, device)."""
    world, rank, local = _dist_info()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        dev = torch.device("cuda", local) if world > 1 else torch.device(device)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return world, rank, dev


def to_device(batch: dict, dev: torch.device, dtype: torch.dtype | None = None) -> dict:
    """Move a batch to ``dev``; floating tensors to ``dtype`` (the parameters' dtype) when given."""
    out = {}
    for k, v in batch.items():
        if torch.is_tensor(v):
            v = v.to(dev, dtype=dtype if (dtype is not None and v.is_floating_point()) else None, non_blocking=True)
        out[k] = v
    return out


def _atomic_save(obj, path: Path) -> None:
    from ..fileio import atomic_path

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


@torch.no_grad()
def evaluate_model(net: DaHyF, dataset: Dataset, batch_size: int = 16, device: str | torch.device = "cpu") -> dict:
    """The Table 4 columns of ``net`` on the hand samples of ``dataset`` (those with 3-D joints).

    Returns ``mpjpe_mm`` (root-relative: wrist on wrist), ``pa_mpjpe_mm`` (FreiHAND alignment),
    ``epe2d_proj_px`` (the projected 3-D joints against the 2-D ground truth, image px) and
    ``epe2d_px`` (the network's 2-D joints against it, crop px); {} when no sample has 3-D joints.
    """
    from ..eval.metrics import epe_2d, pa_mpjpe_batch, point_errors

    was_training = net.training
    net.eval()
    cols: dict[str, list] = {k: [] for k in ("gt3", "p3", "gt2", "p2", "gti", "pi")}
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        keep = (batch["is_hand"] > 0) & (batch["has_joints3d"] > 0)
        if not keep.any():
            continue
        batch = to_device({k: v[keep] for k, v in batch.items()}, torch.device(device), next(net.parameters()).dtype)
        out = net(batch["image"], batch["box"], batch["image_size"], batch["focal"])
        for k, v in (("gt3", batch["joints3d"]), ("p3", out["joints3d"]), ("gt2", batch["joints2d"]),
                     ("p2", out["joints2d"]), ("gti", batch["joints2d_img"]), ("pi", out["joints2d_proj"])):
            cols[k].append(v.float().cpu().numpy())
    net.train(was_training)
    if not cols["gt3"]:
        return {}
    c = {k: np.concatenate(v).astype(np.float64) for k, v in cols.items()}
    root_rel = point_errors(c["gt3"] - c["gt3"][:, :1], c["p3"] - c["p3"][:, :1])
    return {"mpjpe_mm": float(root_rel.mean() * 1000), "pa_mpjpe_mm": float(pa_mpjpe_batch(c["gt3"], c["p3"]).mean() * 1000),
            "epe2d_proj_px": epe_2d(c["gti"], c["pi"]), "epe2d_px": epe_2d(c["gt2"], c["p2"])}


@dataclass
class _Run:
    """The state of one training run (what ``last.pt`` holds, plus the live objects)."""

    module: nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    start_epoch: int = 0
    history: list = field(default_factory=list)
    notes: dict = field(default_factory=dict)

    def state(self, cfg: TrainConfig, epoch: int) -> dict:
        return {"train_config": cfg.to_dict(), "module": self.module.state_dict(), "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(), "scaler": self.scaler.state_dict(), "epoch": epoch,
                "history": self.history}


def check_negatives(cfg: TrainConfig, dataset: Dataset) -> None:
    """Refuse to train L_c without non-hand samples (it would only ever see positives)."""
    if not (cfg.model.contrastive and cfg.contrastive_epochs > 0):
        return
    n = count_negatives(dataset)
    if not n:
        raise ValueError(f"{cfg.name} trains the confidence with L_c, which needs non-hand crops, but the training set "
                         + ("has none" if n == 0 else "does not say how many it has (num_negatives)")
                         + ": give --hanco DIR (HanCo hand and non-hand crops) or choose a config without L_c")


def init_weights(net: DaHyF, init: str | Path) -> dict:
    """Start ``net`` from another image checkpoint of the same architecture (a fine-tune) → its meta."""
    from ..net.checkpoint import CheckpointError, read_checkpoint

    payload = read_checkpoint(init)
    mine = {k: v for k, v in net.cfg.to_dict().items() if k not in ("name", "keypoints", "hand_model")}
    theirs = {k: v for k, v in dict(payload["config"]).items() if k in mine}
    if payload["kind"] != "dahyf" or theirs != mine:
        raise CheckpointError(f"{init} is not a DaHyF image checkpoint of the {net.cfg.backbone} / {net.cfg.name} "
                              "architecture: --init needs the checkpoint this fine-tune continues")
    net.load_state_dict({k: torch.as_tensor(v) for k, v in payload["state_dict"].items()})
    return {"init": str(init)}


def _prepare(cfg: TrainConfig, dev: torch.device, world: int, out_dir: Path, resume: bool, hand, pretrained, init) -> _Run:
    torch.manual_seed(cfg.seed)
    net = DaHyF(cfg.model, hand=hand)
    notes = {}
    if init is not None:
        notes.update(init_weights(net, init))
    elif pretrained is not None:
        from ..net.pretrained import load_pretrained

        notes["pretrained"] = load_pretrained(net.backbone, pretrained).to_dict()
    module = _TrainModule(net, DaHyFLoss(cfg.model, contrastive_margin=cfg.contrastive_margin)).to(dev)
    if world > 1 and dev.type == "cuda":
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    opt = torch.optim.Adam(module.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.lr_milestones), gamma=cfg.lr_gamma)
    run = _Run(module, opt, sched, torch.amp.GradScaler("cuda", enabled=bool(cfg.amp and dev.type == "cuda")), notes=notes)
    last = out_dir / "last.pt"
    if resume and last.is_file():
        state = torch.load(last, map_location="cpu", weights_only=True)
        if state["train_config"] != cfg.to_dict():
            raise ValueError(f"{last} was written by a different config; use another --out or --no-resume")
        module.load_state_dict(state["module"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        run.scaler.load_state_dict(state["scaler"])
        run.start_epoch, run.history = int(state["epoch"]), list(state["history"])
    return run


def _epoch(run: _Run, ddp: nn.Module, loader, n_steps: int, dev, use_c: bool, grad_clip: float, bar) -> dict:
    """One epoch of optimiser steps → the mean of each logged term."""
    run.module.train()
    pdtype = next(run.module.parameters()).dtype
    sums: dict[str, float] = {}
    for step, batch in enumerate(loader):
        if step >= n_steps:
            break
        batch = to_device(batch, dev, pdtype)
        with torch.autocast(device_type=dev.type, dtype=torch.float16, enabled=run.scaler.is_enabled()):
            total, logs = ddp(batch, use_c)
        run.opt.zero_grad(set_to_none=True)
        run.scaler.scale(total).backward()
        if grad_clip > 0:
            run.scaler.unscale_(run.opt)
            nn.utils.clip_grad_norm_(run.module.parameters(), grad_clip)
        run.scaler.step(run.opt)
        run.scaler.update()
        logs["loss"] = float(total.detach())
        for k, v in logs.items():
            sums[k] = sums.get(k, 0.0) + v
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{logs['loss']:.3f}", tasks=f"{logs['task_sum']:.3f}")
    return {k: v / n_steps for k, v in sums.items()}


def train(cfg: TrainConfig, dataset: Dataset, out_dir: str | Path, device: str = "auto", resume: bool = True,
          steps_per_epoch: int | None = None, progress: bool = True, hand=None, shuffle: bool = True,
          checkpoint_every: int = 1, val_dataset: Dataset | None = None, val_every: int = 10,
          pretrained: str | Path | None = None, init: str | Path | None = None) -> dict:
    """Train ``cfg`` on ``dataset`` (samples as in :mod:`dahyf.train.augment`); DDP under torchrun.

    Parameters
    ----------
    cfg : the run; ``cfg.batch_size`` is the global batch.
    dataset : training samples (with augmentation already configured); it must hold non-hand samples
        when ``cfg`` trains L_c (``num_negatives``, see :func:`check_negatives`).
    out_dir : where ``last.pt`` (resume state) and ``model.npz`` (inference checkpoint) go.
    device : 'auto', 'cpu' or 'cuda'.
    resume : continue from ``out_dir/last.pt`` when it exists.
    steps_per_epoch : cap on optimiser steps per epoch (smoke runs); None for a full pass.
    hand : hand model instance, of the kind ``cfg.model.hand_model`` (None: the bundled one for 'open';
        a 'mano' run must give its MANO model).
    shuffle : shuffle the samples each epoch (seeded by ``cfg.seed`` and the epoch).
    checkpoint_every : write ``last.pt`` every this-many epochs (and after the last one).
    val_dataset, val_every : held-out samples scored (:func:`evaluate_model`) on rank 0 every ``val_every``
        epochs and after the last; added to the history as ``val_<column>``.
    pretrained : ImageNet weights of the backbone (``dahyf.net.pretrained``), before training.
    init : a DaHyF checkpoint of the same architecture to start from (fine-tuning; wins over ``pretrained``).

    Returns
    -------
    dict with ``history`` (one dict of mean losses per epoch), ``model`` (the DaHyF, unwrapped),
    ``checkpoint`` (path of model.npz) and ``notes`` (what initialised the weights).
    """
    check_negatives(cfg, dataset)
    world, rank, dev = setup_distributed(device)
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} must be divisible by the {world} processes")
    local_batch = cfg.batch_size // world
    out_dir = Path(out_dir)
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
    run = _prepare(cfg, dev, world, out_dir, resume, hand, pretrained, init)
    ddp = run.module
    if world > 1:
        # rows without a 2-D joint head leave the fine feature branch and L_2d's log σ² unused
        ddp = nn.parallel.DistributedDataParallel(run.module, device_ids=[dev.index] if dev.type == "cuda" else None,
                                                  find_unused_parameters=cfg.model.joint_head == "none")
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=cfg.seed, drop_last=True)
    loader = DataLoader(dataset, batch_size=local_batch, sampler=sampler, num_workers=cfg.num_workers,
                        drop_last=True, pin_memory=dev.type == "cuda", persistent_workers=cfg.num_workers > 0)
    if len(loader) == 0:
        raise ValueError(f"{len(dataset)} samples are fewer than one batch of {cfg.batch_size}: lower --batch-size")
    n_steps = len(loader) if steps_per_epoch is None else min(steps_per_epoch, len(loader))
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=(cfg.epochs - run.start_epoch) * n_steps, desc=cfg.name, unit="step", dynamic_ncols=True)
    for epoch in range(run.start_epoch, cfg.epochs):
        sampler.set_epoch(epoch)
        use_c = cfg.model.contrastive and epoch >= cfg.epochs - cfg.contrastive_epochs
        logs = _epoch(run, ddp, loader, n_steps, dev, use_c, cfg.grad_clip, bar)
        run.sched.step()
        run.history.append(logs | {"epoch": epoch + 1, "lr": run.opt.param_groups[0]["lr"]})
        if val_dataset is not None and rank == 0 and ((epoch + 1) % val_every == 0 or epoch + 1 == cfg.epochs):
            scores = evaluate_model(run.module.net, val_dataset, local_batch, dev)
            run.history[-1].update({f"val_{k}": v for k, v in scores.items()})
            if bar is not None:
                bar.write(f"epoch {epoch + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()))
        if rank == 0 and ((epoch + 1) % checkpoint_every == 0 or epoch + 1 == cfg.epochs):
            _atomic_save(run.state(cfg, epoch + 1), out_dir / "last.pt")
    if bar is not None:
        bar.close()
    ckpt = out_dir / "model.npz"
    if rank == 0:
        save_dahyf(ckpt, run.module.net, meta={"train_config": cfg.to_dict(), "epochs": cfg.epochs, "world_size": world,
                                                "history": run.history[-5:], **run.notes})
    if world > 1:
        torch.distributed.barrier()
    return {"history": run.history, "model": run.module.net, "checkpoint": ckpt, "notes": run.notes}
