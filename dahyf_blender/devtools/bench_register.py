"""Benchmark: what enabling the add-on costs at every Blender start (register time, modules imported).

    python -m dahyf_blender.devtools.bench_register [--runs 5] [--baseline CHECKOUT] [--out benchmarks/register.md]

Each run is a fresh Python: ``import bpy`` first (not counted), then ``import dahyf_blender`` and
``register()`` — what Blender does for an enabled extension at start-up. Reported: the median
seconds, the modules that appeared, and whether torch, OpenCV (cv2) or MediaPipe were among them.
``--baseline`` measures another checkout of the repository (e.g. a ``git worktree`` of an older
commit, with its own engine) in the same run, for a before/after comparison.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "cv2", "mediapipe")

_PROBE = """
import json, sys, time
import bpy
before = set(sys.modules)
t0 = time.perf_counter()
import dahyf_blender
dahyf_blender.register()
seconds = time.perf_counter() - t0
new = set(sys.modules) - before
print(json.dumps({"seconds": seconds, "modules": len(new),
                  "heavy": sorted({m.split(".")[0] for m in new} & set(%r))}))
dahyf_blender.unregister()
"""


def measure(checkout: Path, runs: int) -> dict:
    """Median register time (s), modules added and heavy modules over ``runs`` fresh processes."""
    with tempfile.TemporaryDirectory(prefix="dahyf-bench-register-") as tmp:
        shim = Path(tmp) / "pkgs"
        shim.mkdir()
        (shim / "dahyf").symlink_to(checkout / "engine")  # this checkout's engine, not the installed one
        env = dict(os.environ, BLENDER_USER_RESOURCES=str(Path(tmp) / "profile"),
                   PYTHONPATH=os.pathsep.join([str(shim), str(checkout)]))
        results = []
        for _ in range(runs):
            proc = subprocess.run([sys.executable, "-c", _PROBE % (HEAVY,)], cwd=checkout, env=env,
                                  capture_output=True, text=True, check=True)
            results.append(json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("{"))))
    return {"seconds": statistics.median(r["seconds"] for r in results),
            "min_s": min(r["seconds"] for r in results), "modules": results[-1]["modules"],
            "heavy": results[-1]["heavy"]}


def _row(name: str, r: dict) -> str:
    heavy = ", ".join(r["heavy"]) or "none"
    return f"| {name} | {r['seconds']:.3f} | {r['min_s']:.3f} | {r['modules']} | {heavy} |"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--baseline", type=Path, default=None, help="another checkout to measure in the same run")
    p.add_argument("--baseline-name", default="baseline")
    p.add_argument("--out", default=None, help="write the markdown table here")
    args = p.parse_args(argv)

    import bpy

    rows = [_row("this checkout", measure(REPO, args.runs))]
    if args.baseline:
        rows.insert(0, _row(args.baseline_name, measure(args.baseline.resolve(), args.runs)))
    lines = [
        "# Add-on registration benchmark",
        "",
        f"Enabling the add-on: `import dahyf_blender` + `register()` in a fresh Python after `import bpy`, "
        f"median (and best) of {args.runs} processes; the modules it imported, and which of torch / cv2 / "
        "mediapipe were among them.",
        "",
        "| code | register, median (s) | best (s) | modules imported | torch / cv2 / mediapipe |",
        "|---|---:|---:|---:|---|",
        *rows,
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared), Python {platform.python_version()}, "
        f"Blender (bpy) {bpy.app.version_string}, {platform.platform()}.",
        "",
        "Command: `.venv/bin/python -m dahyf_blender.devtools.bench_register --out benchmarks/register.md`",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        from dahyf.fileio import atomic_write_text

        atomic_write_text(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
