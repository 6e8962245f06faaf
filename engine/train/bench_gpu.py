"""`dahyf bench gpu`: the one GPU check of the image network — one JSON, ≤ 8 minutes on a GPU machine.

    dahyf bench gpu --json                 # on the GPU machine
    dahyf bench gpu --tiny --json          # the same code path on a CPU in seconds (CI)

Sections (each timed, each with its verdict):

* ``backbones`` — ResNet-50 and HRNet-W64 full networks at batch 128 (tiny: 2 crops of 32 px, HRNet at
  width 8): inference
  forward and training step (forward + backward + Adam) throughput in crops/s with float16 autocast
  (AMP) on CUDA, and the peak memory; against the goals ResNet-50 ≥ 1000 and HRNet-W64 ≥ 300 crops/s.
* ``ddp`` — DistributedDataParallel training steps of the ResNet-50 model on every CUDA device
  (one process per device, NCCL, SyncBatchNorm); one gloo process of the light model on a CPU (tiny);
  global crops/s.
* ``training`` — 200 optimiser steps of :func:`dahyf.train.trainer.train` on synthetic images
  (tiny: 12 steps of the light model): the loss must fall (last epoch's task loss < first's).
* ``capture`` — ``dahyf capture --device cuda`` on the bundled sample clip (tiny: 4 frames on the CPU),
  its frames/s and its PA-MPJPE against the clip's ground truth.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from ..constants import CROP_SIZE

#: Throughput goals of issue 16 (training-free inference forward, AMP, batch 128), crops/s.
GOALS = {"resnet50": 1000.0, "hrnet_w64": 300.0}
#: The full check, and the tiny one: the same code on the smallest instances (HRNet at width 8, the light
#: model for DDP and training, 32-px crops), so that a CPU runs it in seconds.
FULL = {"batch": 128, "crop": CROP_SIZE, "iters": 10, "warmup": 2, "models": {"resnet50": ("r50_full", "resnet50"),
        "hrnet_w64": ("paper", "hrnet_w64")}, "ddp_model": "r50_full", "train_steps": 200, "train_model": "r50_full",
        "train_batch": 32, "capture_frames": None}
TINY = {"batch": 2, "crop": 32, "iters": 1, "warmup": 0, "models": {"resnet50": ("r50_full", "resnet50"),
        "hrnet_w64": ("paper", "hrnet_w8")}, "ddp_model": "light_full", "train_steps": 12, "train_model": "light_full",
        "train_batch": 4, "capture_frames": 4}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tiny", action="store_true", help="seconds-long CPU run of the same code path (CI)")
    parser.add_argument("--device", default="auto", help="auto (cuda when present), cuda or cpu")
    parser.add_argument("--json", action="store_true", help="print the report as JSON (the default prints it too)")
    parser.add_argument("--out", type=Path, help="also write the JSON report to this file")


def _sync(dev):
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _peak_gib(dev) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated(dev) / 2**30, 2) if dev.type == "cuda" else None


def synthetic_batch(n: int, crop: int, dev, hand, seed: int = 0) -> dict:
    """A labelled batch of ``n`` synthetic hand crops (side ``crop``) on ``dev``, as the trainer reads it."""
    import torch
    from torch.utils.data import default_collate

    from .synthetic_images import SyntheticImages
    from .trainer import to_device

    ds = SyntheticImages(hand, n=max(n, 1), seed=seed, crop_size=crop)
    return to_device(default_collate([ds[i % len(ds)] for i in range(n)]), dev, torch.float32)


def _build(cfg_name: str, crop: int, hand, dev, backbone: str | None = None):
    from dataclasses import replace

    from ..net.dahyf_net import DaHyF
    from ..net.losses import DaHyFLoss
    from .configs import get_config
    from .trainer import _TrainModule

    cfg = get_config(cfg_name)
    cfg = replace(cfg, model=replace(cfg.model, crop_size=crop, backbone=backbone or cfg.model.backbone))
    return cfg, _TrainModule(DaHyF(cfg.model, hand=hand), DaHyFLoss(cfg.model)).to(dev)


def _time(fn, iters: int, dev, warmup: int = 1) -> float:
    for _ in range(warmup):  # cuDNN / oneDNN choose their kernels on the first calls
        fn()
    _sync(dev)
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    _sync(dev)
    return (time.perf_counter() - t0) / iters


def train_step_fn(module, batch: dict, dev, lr: float = 5e-5):
    """A closure that runs one optimiser step (Adam; float16 autocast and GradScaler on CUDA) of ``module``
    (a ``_TrainModule``, possibly DDP-wrapped) on ``batch``."""
    import torch

    amp = dev.type == "cuda"
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)

    def step():
        module.train()
        with torch.autocast(dev.type, dtype=torch.float16, enabled=amp):
            loss, _ = module(batch, True)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    return step


def bench_backbone(backbone: str, p: dict, dev, hand) -> dict:
    """Inference and training-step throughput of the full network on ``backbone`` (see the module docstring)."""
    import torch

    cfg_name, instance = p["models"][backbone]
    cfg, module = _build(cfg_name, p["crop"], hand, dev, instance)
    batch = synthetic_batch(p["batch"], p["crop"], dev, hand)
    amp = dev.type == "cuda"
    if amp:
        torch.cuda.reset_peak_memory_stats(dev)

    def forward():
        module.eval()
        with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.float16, enabled=amp):
            module.net(batch["image"], batch["box"], batch["image_size"], batch["focal"])

    t_fwd = _time(forward, p["iters"], dev, p["warmup"])
    t_train = _time(train_step_fn(module, batch, dev, cfg.lr), p["iters"], dev, p["warmup"])
    fwd = p["batch"] / t_fwd
    out = {"backbone": instance, "batch": p["batch"], "crop": p["crop"], "amp": amp,
           "forward_crops_per_s": round(fwd, 1), "train_crops_per_s": round(p["batch"] / t_train, 1),
           "peak_mem_gib": _peak_gib(dev), "goal_forward_crops_per_s": GOALS[backbone]}
    out["meets_goal"] = fwd >= GOALS[backbone] if (p is FULL and amp) else None
    return out


def _ddp_worker(rank: int, world: int, port: int, p: dict, result_path: str) -> None:
    """One DDP process: ResNet-50 training steps on its share of the global batch; rank 0 writes the result."""
    import torch
    from torch import nn

    cuda = torch.cuda.is_available() and p.get("device") == "cuda"
    dev = torch.device("cuda", rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(dev)
    torch.distributed.init_process_group("nccl" if cuda else "gloo", init_method=f"tcp://127.0.0.1:{port}",
                                         rank=rank, world_size=world)
    try:
        from ..hand.model import load_hand_model

        hand = load_hand_model("open", "right")
        _, module = _build(p["ddp_model"], p["crop"], hand, dev)
        if cuda:
            module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        ddp = nn.parallel.DistributedDataParallel(module, device_ids=[rank] if cuda else None)
        local = max(p["batch"] // world, 1)
        batch = synthetic_batch(local, p["crop"], dev, hand, seed=rank)
        dt = _time(train_step_fn(ddp, batch, dev), p["iters"], dev, p["warmup"])
        if rank == 0:
            Path(result_path).write_text(json.dumps({
                "model": p["ddp_model"], "world_size": world, "backend": "nccl" if cuda else "gloo", "global_batch": local * world,
                "train_crops_per_s": round(local * world / dt, 1), "peak_mem_gib_rank0": _peak_gib(dev)}))
    finally:
        torch.distributed.destroy_process_group()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_check(p: dict, dev) -> dict:
    """DDP training steps on every CUDA device (spawned processes), or one gloo process on the CPU."""
    import torch

    world = torch.cuda.device_count() if dev.type == "cuda" else 1
    q = dict(p, device=dev.type)
    with tempfile.TemporaryDirectory(prefix="dahyf-ddp-") as tmp:
        path = str(Path(tmp) / "ddp.json")
        if world > 1:
            torch.multiprocessing.spawn(_ddp_worker, args=(world, _free_port(), q, path), nprocs=world, join=True)
        else:
            _ddp_worker(0, 1, _free_port(), q, path)
        return json.loads(Path(path).read_text())


def training_check(p: dict, dev, hand) -> dict:
    """``train()`` on synthetic images for ``p['train_steps']`` steps; the task loss must fall."""
    from dataclasses import replace

    from .configs import get_config
    from .synthetic_images import SyntheticImages
    from .trainer import train

    epochs = 10 if p is FULL else 3
    per_epoch = p["train_steps"] // epochs
    cfg = get_config(p["train_model"], epochs=epochs, batch_size=p["train_batch"], lr=2e-4 if p is FULL else 2e-3,
                     num_workers=min(8, os.cpu_count() or 1) if dev.type == "cuda" else 0, contrastive_epochs=1)
    cfg = replace(cfg, lr_milestones=(), model=replace(cfg.model, crop_size=p["crop"]))
    n = per_epoch * p["train_batch"]
    ds = SyntheticImages(hand, n=n, seed=0, negatives=max(1, n // 8), crop_size=p["crop"])
    with tempfile.TemporaryDirectory(prefix="dahyf-train-") as tmp:
        res = train(cfg, ds, tmp, device=dev.type, resume=False, steps_per_epoch=per_epoch, progress=False, hand=hand)
    first, last = res["history"][0]["task_sum"], res["history"][-1]["task_sum"]
    return {"config": cfg.name, "steps": epochs * per_epoch, "batch": cfg.batch_size, "crop": p["crop"],
            "amp": dev.type == "cuda", "task_loss_first_epoch": round(first, 4), "task_loss_last_epoch": round(last, 4),
            "loss_falls": bool(last < first), "contrastive_in_last_epoch": "c" in res["history"][-1]}


def capture_check(p: dict, dev) -> dict:
    """``dahyf capture --device DEV`` on the bundled sample clip, scored against its ground truth."""
    import contextlib
    import io

    from .. import sample_video as sv
    from ..assets import SAMPLE_VIDEO
    from ..cli import main

    with tempfile.TemporaryDirectory(prefix="dahyf-capture-") as tmp:
        take_path = Path(tmp) / "take.npz"
        argv = ["capture", str(SAMPLE_VIDEO), "-o", str(take_path), "--device", dev.type, "--hands", "right", "--quiet"]
        if p["capture_frames"]:
            argv += ["--frames", f"0:{p['capture_frames']}"]
        log = io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            rc = main(argv)
        dt = time.perf_counter() - t0
        if rc != 0:
            return {"command": "dahyf capture open_hand_sample.mp4 -o take.npz " + " ".join(argv[4:]), "returncode": rc,
                    "log": log.getvalue()[-2000:]}
        from ..capture.take import Take

        take = Take.load(take_path)
        score = sv.evaluate_take_against_gt(take, sv.SAMPLE_GT)
    return {"command": "dahyf capture open_hand_sample.mp4 -o take.npz " + " ".join(argv[4:]), "returncode": rc,
            "frames": int(score["frames"]), "frames_per_s": round(score["frames"] / dt, 1),
            "pa_mpjpe_mm": round(float(score["pa_mpjpe_mm"]), 2)}


def run_gpu_check(tiny: bool = False, device: str = "auto") -> dict:
    """Every section of the module docstring → one report dict."""
    import platform

    import torch

    from ..hand.model import load_hand_model

    if device == "auto":
        device = "cuda" if (torch.cuda.is_available() and not tiny) else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for but PyTorch sees no CUDA GPU")
    dev = torch.device(device)
    p = TINY if tiny else FULL
    if tiny:
        torch.set_num_threads(1)  # tiny convolutions: threads only add OpenMP contention on a shared CPU
    hand = load_hand_model("open", "right")
    report = {"tiny": tiny, "device": str(dev), "torch": torch.__version__, "python": platform.python_version(),
              "gpu": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if dev.type == "cuda" else [],
              "cpu_count": os.cpu_count()}
    t_all = time.perf_counter()
    def backbones():
        rows = []
        for b in ("resnet50", "hrnet_w64"):
            rows.append(bench_backbone(b, p, dev, hand))
            if dev.type == "cuda":
                torch.cuda.empty_cache()  # the last model's memory back before the next one
        return rows

    for name, fn in (("backbones", backbones),
                     ("ddp", lambda: ddp_check(p, dev)),
                     ("training", lambda: training_check(p, dev, hand)),
                     ("capture", lambda: capture_check(p, dev))):
        t0 = time.perf_counter()
        report[name] = fn()
        report.setdefault("seconds", {})[name] = round(time.perf_counter() - t0, 1)
    report["seconds"]["total"] = round(time.perf_counter() - t_all, 1)
    report["ok"] = bool(report["training"]["loss_falls"] and report["capture"].get("returncode") == 0
                        and all(b["meets_goal"] is not False for b in report["backbones"]))
    return report


def run(args: argparse.Namespace) -> int:
    try:
        report = run_gpu_check(args.tiny, args.device)
    except RuntimeError as e:
        print(f"dahyf bench gpu: {e}", file=sys.stderr)
        return 2
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        from ..fileio import atomic_write_text

        atomic_write_text(args.out, text + "\n")
    return 0 if report["ok"] else 1
