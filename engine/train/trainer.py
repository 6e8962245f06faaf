"""Trainer of the DaHyF image network: AMP, checkpoint / resume, and multi-GPU DDP via ``torchrun``.

Single process::

    dahyf train net --config light_full --data synthetic --out runs/light

Four GPUs (the paper's recipe: global batch 128 = 4 × 32)::

    torchrun --nproc_per_node 4 -m dahyf train net --config paper --dataset freihand --data FreiHAND_pub_v2 --out runs/paper

Under ``torchrun`` (``WORLD_SIZE`` > 1) each process joins a process group — ``nccl`` on CUDA, ``gloo``
on CPU — takes its share of the global batch from a ``DistributedSampler`` and gradients are averaged
by ``DistributedDataParallel``. Because the light backbone uses GroupNorm and every loss is a per-sample
mean, N processes × (B/N) give the same update as one process × B. (ResNet-50 / HRNet use BatchNorm;
under DDP on CUDA they are converted to SyncBatchNorm.)

``out/last.pt`` (every epoch, atomically) holds weights, optimiser, scheduler, scaler, epoch and history;
training resumes from it. ``out/model.pt`` is the inference checkpoint (kind 'dahyf'), loadable by
``dahyf.load_engine(path)``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from ..net.dahyf_net import DaHyF, save_dahyf
from ..net.losses import DaHyFLoss
from .configs import CONFIGS, TrainConfig, get_config


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


def _to(batch: dict, dev: torch.device, dtype: torch.dtype | None = None) -> dict:
    """Move a batch to ``dev``; floating tensors to ``dtype`` (the parameters' dtype) when given."""
    out = {}
    for k, v in batch.items():
        if torch.is_tensor(v):
            v = v.to(dev, dtype=dtype if (dtype is not None and v.is_floating_point()) else None, non_blocking=True)
        out[k] = v
    return out


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


@torch.no_grad()
def evaluate_model(net: DaHyF, dataset: Dataset, batch_size: int = 16, device: str | torch.device = "cpu") -> dict:
    """PA-MPJPE (mm, FreiHAND alignment) and 2-D EPE (crop px) of ``net`` on the hand samples of ``dataset``."""
    from ..eval.metrics import epe_2d, pa_mpjpe_batch

    was_training = net.training
    net.eval()
    gts, preds, g2, p2 = [], [], [], []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        keep = (batch["is_hand"] > 0) & (batch["has_joints3d"] > 0)
        if not keep.any():
            continue
        batch = _to({k: v[keep] for k, v in batch.items()}, torch.device(device), next(net.parameters()).dtype)
        out = net(batch["image"], batch["box"], batch["image_size"], batch["focal"])
        gts.append(batch["joints3d"].cpu().numpy())
        preds.append(out["joints3d"].float().cpu().numpy())
        g2.append(batch["joints2d"].cpu().numpy())
        p2.append(out["joints2d"].float().cpu().numpy())
    net.train(was_training)
    if not gts:
        return {}
    return {"pa_mpjpe_mm": float(pa_mpjpe_batch(np.concatenate(gts), np.concatenate(preds)).mean() * 1000),
            "epe2d_px": epe_2d(np.concatenate(g2), np.concatenate(p2))}


def train(cfg: TrainConfig, dataset: Dataset, out_dir: str | Path, device: str = "auto", resume: bool = True,
          steps_per_epoch: int | None = None, progress: bool = True, hand=None, shuffle: bool = True,
          checkpoint_every: int = 1, val_dataset: Dataset | None = None, val_every: int = 10) -> dict:
    """Train ``cfg`` on ``dataset`` (samples as in :mod:`dahyf.train.datasets`); DDP under torchrun.

    Parameters
    ----------
    cfg : the run; ``cfg.batch_size`` is the global batch.
    dataset : training samples (with augmentation already configured).
    out_dir : where ``last.pt`` (resume state) and ``model.pt`` (inference checkpoint) go.
    device : 'auto', 'cpu' or 'cuda'.
    resume : continue from ``out_dir/last.pt`` when it exists.
    steps_per_epoch : cap on optimiser steps per epoch (smoke runs); None for a full pass.
    hand : hand model instance (default: ``cfg.model.hand_model``).
    shuffle : shuffle the samples each epoch (seeded by ``cfg.seed`` and the epoch).
    checkpoint_every : write ``last.pt`` every this-many epochs (and after the last one).
    val_dataset, val_every : held-out samples scored (PA-MPJPE mm, 2-D EPE px) on rank 0 every
        ``val_every`` epochs and after the last; added to the history as ``val_pa_mpjpe_mm`` / ``val_epe2d_px``.

    Returns
    -------
    dict with ``history`` (one dict of mean losses per epoch), ``model`` (the DaHyF, unwrapped) and
    ``checkpoint`` (path of model.pt).
    """
    world, rank, dev = setup_distributed(device)
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} must be divisible by the {world} processes")
    local_batch = cfg.batch_size // world
    out_dir = Path(out_dir)
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    net = DaHyF(cfg.model, hand=hand)
    module = _TrainModule(net, DaHyFLoss(cfg.model)).to(dev)
    if world > 1 and dev.type == "cuda":
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    opt = torch.optim.Adam(module.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.lr_milestones), gamma=cfg.lr_gamma)
    use_amp = bool(cfg.amp and dev.type == "cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    start_epoch, history = 0, []
    last = out_dir / "last.pt"
    if resume and last.is_file():
        state = torch.load(last, map_location="cpu", weights_only=True)
        if state["train_config"] != cfg.to_dict():
            raise ValueError(f"{last} was written by a different config; use another --out or --no-resume")
        module.load_state_dict(state["module"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, history = int(state["epoch"]), list(state["history"])
    ddp = module
    if world > 1:
        # rows without a 2-D joint head leave the fine feature branch and L_2d's log σ² unused
        ddp = nn.parallel.DistributedDataParallel(module, device_ids=[dev.index] if dev.type == "cuda" else None,
                                                  find_unused_parameters=cfg.model.joint_head == "none")
    pdtype = next(module.parameters()).dtype
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=cfg.seed, drop_last=True)
    loader = DataLoader(dataset, batch_size=local_batch, sampler=sampler, num_workers=cfg.num_workers,
                        drop_last=True, pin_memory=dev.type == "cuda", persistent_workers=cfg.num_workers > 0)
    if len(loader) == 0:
        raise ValueError(f"{len(dataset)} samples are fewer than one batch of {cfg.batch_size}: lower --batch-size")
    n_steps = len(loader) if steps_per_epoch is None else min(steps_per_epoch, len(loader))
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=(cfg.epochs - start_epoch) * n_steps, desc=cfg.name, unit="step", dynamic_ncols=True)
    for epoch in range(start_epoch, cfg.epochs):
        module.train()
        sampler.set_epoch(epoch)
        use_c = cfg.model.contrastive and epoch >= cfg.epochs - cfg.contrastive_epochs
        sums: dict[str, float] = {}
        for step, batch in enumerate(loader):
            if step >= n_steps:
                break
            batch = _to(batch, dev, pdtype)
            with torch.autocast(device_type=dev.type, dtype=torch.float16, enabled=use_amp):
                total, logs = ddp(batch, use_c)
            opt.zero_grad(set_to_none=True)
            scaler.scale(total).backward()
            if cfg.grad_clip > 0:
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(module.parameters(), cfg.grad_clip)
            scaler.step(opt)
            scaler.update()
            logs["loss"] = float(total.detach())
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v
            if bar is not None:
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{logs['loss']:.3f}", tasks=f"{logs['task_sum']:.3f}")
        sched.step()
        history.append({k: v / n_steps for k, v in sums.items()} | {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"]})
        if val_dataset is not None and rank == 0 and ((epoch + 1) % val_every == 0 or epoch + 1 == cfg.epochs):
            scores = evaluate_model(module.net, val_dataset, local_batch, dev)
            history[-1].update({f"val_{k}": v for k, v in scores.items()})
            if bar is not None:
                bar.write(f"epoch {epoch + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()))
        if rank == 0 and ((epoch + 1) % checkpoint_every == 0 or epoch + 1 == cfg.epochs):
            _atomic_save({"train_config": cfg.to_dict(), "module": module.state_dict(), "optimizer": opt.state_dict(),
                          "scheduler": sched.state_dict(), "scaler": scaler.state_dict(), "epoch": epoch + 1,
                          "history": history}, last)
    if bar is not None:
        bar.close()
    ckpt = out_dir / "model.pt"
    if rank == 0:
        save_dahyf(ckpt, module.net, meta={"train_config": cfg.to_dict(), "epochs": cfg.epochs, "world_size": world,
                                            "history": history[-5:]})
    if world > 1:
        torch.distributed.barrier()
    return {"history": history, "model": module.net, "checkpoint": ckpt}


# ---------------------------------------------------------------------------------------- CLI
DATASETS = ("freihand", "ho3d", "synthetic")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``dahyf train net``."""
    parser.add_argument("--config", default="paper", choices=sorted(CONFIGS), help="recipe / Table 4 row (default paper)")
    parser.add_argument("--dataset", default="freihand", choices=DATASETS, help="reader for --data (default freihand)")
    parser.add_argument("--data", required=True, help="dataset folder (FreiHAND_pub_v2, HO3D_v2/v3), or 'synthetic'")
    parser.add_argument("--val-data", type=Path,
                        help="FreiHAND folder whose evaluation split (with evaluation_xyz.json) is scored during training")
    parser.add_argument("--val-every", type=int, default=10, help="epochs between validations (default 10)")
    parser.add_argument("--negatives", type=Path, help="HanCo folder: non-hand crops for the contrastive loss L_c")
    parser.add_argument("--out", type=Path, default=Path("runs/dahyf"), help="run folder (last.pt, model.pt)")
    parser.add_argument("--epochs", type=int, help="override the number of epochs")
    parser.add_argument("--batch-size", type=int, help="override the GLOBAL batch size")
    parser.add_argument("--lr", type=float, help="override the learning rate")
    parser.add_argument("--workers", type=int, help="DataLoader workers per process")
    parser.add_argument("--steps-per-epoch", type=int, help="cap optimiser steps per epoch (smoke runs)")
    parser.add_argument("--synthetic-size", type=int, default=256, help="samples of --data synthetic")
    parser.add_argument("--mano", help="train with real MANO: folder holding MANO_RIGHT.pkl (default: the open hand model)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--no-resume", action="store_true", help="start over even if OUT/last.pt exists")


def build_dataset(kind: str, data: str, augment: bool, seed: int, hand=None, synthetic_size: int = 256,
                  negatives: Path | None = None, hand_model: str = "open") -> Dataset:
    """The training set of ``--dataset`` / ``--data`` (plus HanCo negatives when given)."""
    from torch.utils.data import ConcatDataset

    from . import datasets as D

    aug = D.Augmentation() if augment else None
    if kind == "synthetic" or data == "synthetic":
        if hand is None:
            from ..hand.model import load_hand_model

            hand = load_hand_model(hand_model, "right")
        ds = D.SyntheticImages(hand, n=synthetic_size, seed=seed, negatives=synthetic_size // 8)
    elif kind == "freihand":
        ds = D.FreiHAND(data, "training", augment=aug, seed=seed, hand_model=hand_model)
    elif kind == "ho3d":
        ds = D.HO3D(data, "train", augment=aug, seed=seed, hand_model=hand_model)
    else:
        raise ValueError(f"unknown dataset {kind!r}")
    if negatives is not None:
        # as many negatives as the synthetic set has (1 per 8 hands): HanCo's ~860k frames would swamp the hands
        ds = ConcatDataset([ds, D.HanCoNegatives(negatives, max_items=max(1, len(ds) // 8))])
    return ds


def run(args: argparse.Namespace) -> int:
    """``dahyf train net``."""
    from .datasets import DatasetLayoutError

    from dataclasses import replace

    cfg = get_config(args.config, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, num_workers=args.workers)
    if args.mano:
        cfg = replace(cfg, model=replace(cfg.model, hand_model=str(args.mano)))
    try:
        ds = build_dataset(args.dataset, args.data, cfg.augment, cfg.seed, synthetic_size=args.synthetic_size,
                           negatives=args.negatives, hand_model=cfg.model.hand_model)
        val = None
        if args.val_data is not None:
            from .datasets import FreiHAND

            val = FreiHAND(args.val_data, "evaluation", hand_model=cfg.model.hand_model)
        t0 = time.time()
        res = train(cfg, ds, args.out, device=args.device, resume=not args.no_resume, steps_per_epoch=args.steps_per_epoch,
                    val_dataset=val, val_every=args.val_every)
    except (DatasetLayoutError, ValueError) as e:
        print(f"dahyf train net: {e}", file=sys.stderr)
        return 2
    if _dist_info()[1] == 0:
        last = res["history"][-1] if res["history"] else {}
        print(json.dumps({"checkpoint": str(res["checkpoint"]), "seconds": round(time.time() - t0, 1),
                          "last_epoch": last}, indent=2))
    return 0
