"""`dahyf bench network`: forward throughput of the DaHyF image network (crops/s) per backbone and batch.

The whole network is timed (backbone, direction maps, SJCP, PE, regressor, MANO layer, projection,
confidence), in ``torch.inference_mode``; on CUDA with float16 autocast (AMP). On a CPU the big
backbones at large batches take minutes per forward: each (backbone, batch) gets a time budget, the
number of timed iterations is what fits in it (at least one, at most 50, after warm-up), and a
configuration whose single forward is estimated (from the smaller batches) to exceed the budget is
skipped and reported as such.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

from ..constants import CROP_SIZE
from ..fileio import atomic_write_text

BACKBONES = ("light", "resnet50", "hrnet_w64")
BATCHES = (1, 32, 128)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=BACKBONES)
    parser.add_argument("--batches", nargs="+", type=int, default=list(BATCHES))
    parser.add_argument("--device", default="all", help="cpu, cuda, or all (cpu and, when present, cuda)")
    parser.add_argument("--budget", type=float, default=30.0, help="CPU seconds per (backbone, batch) (default 30)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--md", type=Path, help="write a Markdown report (e.g. benchmarks/network.md)")


def device_name(device: str) -> str:
    """A human-readable name of the CPU model or CUDA GPU."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bench_one(backbone: str, batch: int, device: str, budget_s: float, est_per_crop_s: float | None = None,
              hand=None) -> dict:
    """Time the full network forward; returns a result row (crops_per_s None when skipped)."""
    import torch

    from ..net.dahyf_net import DaHyF, DaHyFConfig

    row = {"backbone": backbone, "batch": batch, "device": device, "amp": device.startswith("cuda")}
    if device == "cpu" and est_per_crop_s is not None and est_per_crop_s * batch > budget_s:
        row.update(crops_per_s=None, iterations=0, note=f"skipped: one forward estimated at {est_per_crop_s * batch:.0f} s "
                                                           f"(> {budget_s:.0f} s budget)")
        return row
    net = DaHyF(DaHyFConfig(backbone=backbone), hand=hand).to(device).eval()
    dev = torch.device(device)
    side = net.cfg.crop_size
    images = torch.randn(batch, 3, side, side, device=dev)
    boxes = torch.tensor([[640.0, 360.0, 300.0]], device=dev).expand(batch, 3).contiguous()
    size = torch.tensor([[1280.0, 720.0]], device=dev).expand(batch, 2).contiguous()
    focal = torch.full((batch,), 1468.6, device=dev)

    def step():
        with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.float16, enabled=row["amp"]):
            net(images, boxes, size, focal)
        if dev.type == "cuda":
            torch.cuda.synchronize()

    # warm-up: oneDNN / cuDNN pick their kernels on the first calls
    warm = 3 if (dev.type == "cuda" or batch <= 32) else 1
    for _ in range(warm):
        step()
    max_iters = 50
    t0, n = time.perf_counter(), 0
    while n < max_iters and (n == 0 or time.perf_counter() - t0 < (budget_s if dev.type == "cpu" else 10.0)):
        step()
        n += 1
    dt = time.perf_counter() - t0
    row.update(crops_per_s=batch * n / dt, iterations=n, seconds=dt, note="")
    if dev.type == "cuda":
        row["peak_mem_gib"] = torch.cuda.max_memory_allocated(dev) / 2**30
    return row


def run_benchmark(backbones=BACKBONES, batches=BATCHES, device: str = "all", budget_s: float = 30.0) -> dict:
    """All rows for the requested backbones / batches / devices, with the machine description."""
    import torch

    from ..hand.model import load_hand_model

    devices = ["cpu", "cuda"] if device == "all" else [device]
    if "cuda" in devices and not torch.cuda.is_available():
        if device == "cuda":
            raise RuntimeError("--device cuda asked for but PyTorch sees no CUDA GPU")
        devices.remove("cuda")
    hand = load_hand_model("open", "right")
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    rows = []
    for dev in devices:
        for bb in backbones:
            per_crop = None
            for b in sorted(batches):
                r = bench_one(bb, b, dev, budget_s, per_crop, hand)
                if r["crops_per_s"]:
                    per_crop = 1.0 / r["crops_per_s"]
                rows.append(r)
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "devices": {d: device_name(d) for d in devices}, "budget_s": budget_s, "results": rows,
        "cpu_count": os.cpu_count(),
        "load_average": {"before": load_before, "after": os.getloadavg() if hasattr(os, "getloadavg") else None},
    }


def markdown(report: dict, command: str) -> str:
    lines = ["# DaHyF network throughput", "",
             f"Command: `{command}`  ", f"Date: {report['date']}; torch {report['torch']}; CPU threads {report['threads']} "
             f"of {report.get('cpu_count')} cores.",
             "", "Full network forward (backbone → GDM → SJCP → PE → regressor → MANO → projection → confidence), "
             f"crops of {CROP_SIZE} × {CROP_SIZE}; CUDA rows use float16 autocast. CPU rows: three warm-up forwards (one at batch > 32), then as many "
             f"timed forwards (≤ 50) as fit in {report['budget_s']:.0f} s (at least one); a row whose single forward is estimated "
             "beyond that budget is skipped.", ""]
    la = report.get("load_average") or {}
    if la.get("before"):
        lines += [f"System load average (1/5/15 min) before: {', '.join(f'{v:.1f}' for v in la['before'])}; after: "
                  f"{', '.join(f'{v:.1f}' for v in la['after'])}. CPU figures scale with the share of the cores "
                  "this process gets: on a machine shared with other jobs they are lower bounds.", ""]
    for dev, name in report["devices"].items():
        lines += [f"## {dev}: {name}", "", "| backbone | batch | crops/s | timed forwards | note |", "|---|---:|---:|---:|---|"]
        for r in report["results"]:
            if r["device"] == dev:
                cps = f"{r['crops_per_s']:.1f}" if r["crops_per_s"] else "—"
                lines.append(f"| {r['backbone']} | {r['batch']} | {cps} | {r['iterations']} | {r.get('note', '')} |")
        lines.append("")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import sys

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        report = run_benchmark(args.backbones, args.batches, args.device, args.budget)
    except RuntimeError as e:
        print(f"dahyf bench network: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for r in report["results"]:
            cps = f"{r['crops_per_s']:8.1f}" if r["crops_per_s"] else "       —"
            print(f"{r['device']:5s} {r['backbone']:10s} batch {r['batch']:4d}: {cps} crops/s  {r.get('note', '')}")
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        cmd = "dahyf bench network " + " ".join(sys.argv[3:]) if len(sys.argv) > 3 else "dahyf bench network"
        atomic_write_text(args.md, markdown(report, cmd))
    return 0
