"""`dahyf bench`: throughput, accuracy and memory benchmarks.

Sub-commands: ``capture`` (dahyf.capture.bench) and, when present, ``network``
(dahyf.eval.bench_network).
"""
from __future__ import annotations

import importlib
import importlib.util

#: name -> (module, help)
BENCHES = {
    "capture": ("dahyf.capture.bench", "capture throughput (vs MediaPipe alone), quality vs raw landmarks, memory"),
    "network": ("dahyf.eval.bench_network", "network accuracy and speed"),
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


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="bench", metavar="BENCH")
    for name, (module, help_) in _available().items():
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(_bench_module=module)
        importlib.import_module(module).add_arguments(sp)


def run(args) -> int:
    module = getattr(args, "_bench_module", None)
    if module is None:
        print("usage: dahyf bench {" + ",".join(_available()) + "} ...  (see dahyf bench -h)")
        return 2
    return int(importlib.import_module(module).run(args) or 0)
