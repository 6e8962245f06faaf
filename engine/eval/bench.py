"""`dahyf bench`: throughput, accuracy and memory benchmarks.

Sub-commands: ``capture`` (dahyf.capture.bench), ``live`` (dahyf.capture.live_bench), ``fidelity``
(dahyf.eval.bench_fidelity) and, when present, ``network`` (dahyf.eval.bench_network).
"""
from __future__ import annotations

import importlib
import importlib.util

#: name -> (module, help)
BENCHES = {
    "capture": ("dahyf.capture.bench", "capture throughput (vs MediaPipe alone), quality vs raw landmarks, memory"),
    "network": ("dahyf.eval.bench_network", "network accuracy and speed"),
    "live": ("dahyf.capture.live_bench", "live capture of a video played in real time: latency, drops, jitter"),
    "fidelity": ("dahyf.eval.bench_fidelity", "3-D fidelity: FreiHAND images, rendered clips with ground truth, real video"),
    # registry of front ends (like dahyf.cli): the GPU check trains, so it lives with the trainer
    "gpu": ("dahyf.train.bench_gpu", "the image network's GPU check: AMP throughput, DDP, training, CUDA capture"),
}


def _available():
    out = {}
    for name, (module, help_) in BENCHES.items():
        try:
            if importlib.util.find_spec(module) is not None:
                out[name] = (module, help_)
        except ModuleNotFoundError:
            pass
    return out


def _sample_video():
    from ..assets import SAMPLE_VIDEO

    return SAMPLE_VIDEO


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="bench", metavar="BENCH")
    for name, (module, help_) in _available().items():
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(_bench_module=module)
        importlib.import_module(module).add_arguments(sp)
    sp = sub.add_parser("all", help="every benchmark with its defaults (capture: on the bundled sample video)")
    sp.add_argument("--video", help="video for the capture benchmark (default: the bundled sample)")
    sp.set_defaults(_bench_module="all")


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _run_all(args) -> int:
    import argparse

    rc = 0
    for name, (module, _) in _available().items():
        mod = importlib.import_module(module)
        parser = argparse.ArgumentParser(prog=f"dahyf bench {name}")
        mod.add_arguments(parser)
        argv = []
        if name in ("capture", "live"):
            video = args.video or str(_sample_video())
            argv = [video, "--out", f"benchmarks/{name}_sample.json"] if not args.video else [video]
        if name == "gpu" and not _has_cuda():
            argv = ["--tiny"]  # the full check needs a GPU (hours on a CPU)
        print(f"== dahyf bench {name} {' '.join(argv)}")
        rc = max(rc, int(mod.run(parser.parse_args(argv)) or 0))
    return rc


def run(args) -> int:
    module = getattr(args, "_bench_module", None)
    if module is None:
        print("usage: dahyf bench {" + ",".join([*_available(), "all"]) + "} ...  (see dahyf bench -h)")
        return 2
    if module == "all":
        return _run_all(args)
    return int(importlib.import_module(module).run(args) or 0)
