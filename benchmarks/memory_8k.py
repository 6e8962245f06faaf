"""Peak memory of a capture at 8K, with the decoder's read-ahead bounded in bytes and unbounded (64 frames).

    python benchmarks/memory_8k.py [--frames 60] [--out benchmarks/memory_8k.json]

Makes an 8K (7680x4320) clip from the bundled sample clip (centre crop, upscaled, mp4v), then
captures it in a fresh process per setting and reports that process's peak resident memory
(VmHWM). 'unbounded' sets DECODE_AHEAD_BYTES so high that the queue holds 2 chunks (64 frames),
which is what the pipeline did before the read-ahead was bounded in bytes.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
from dahyf.capture import pipeline
from dahyf.capture.bench import peak_rss_mb
from dahyf.capture.engine import load_engine
if sys.argv[2] != "default":
    pipeline.DECODE_AHEAD_BYTES = int(sys.argv[2])
engine = load_engine(None, device="cpu")
rss0 = peak_rss_mb()
t0 = time.perf_counter()
rows = sum(len(c) for c in engine.stream(sys.argv[1], hands="both"))
print(json.dumps({"rows": rows, "wall_s": time.perf_counter() - t0, "peak_rss_mb": peak_rss_mb(),
                  "peak_rss_before_capture_mb": rss0, "timings": engine.last_timings}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60, help="frames of the 8K clip (default 60)")
    ap.add_argument("--out", default=str(Path(__file__).with_name("memory_8k.json")))
    args = ap.parse_args(argv)
    from dahyf.capture.bench import machine_info, transcode
    from dahyf.fileio import atomic_write_text
    from dahyf.sample_video import SAMPLE_VIDEO

    result = {"size": [7680, 4320], "frames": args.frames, "machine": machine_info(),
              "date": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": {}}
    with tempfile.TemporaryDirectory(prefix="dahyf-8k-") as tmp:
        clip = transcode(SAMPLE_VIDEO, Path(tmp) / "sample_8k.mp4", (7680, 4320), args.frames)
        result["clip_bytes"] = clip.stat().st_size
        for name, ahead in (("bounded (DECODE_AHEAD_BYTES = 128 MiB)", "default"),
                            ("unbounded (64 frames, as before)", str(2**50))):
            r = subprocess.run([sys.executable, "-c", CHILD, str(clip), ahead], capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(r.stderr[-3000:])
            result["runs"][name] = json.loads(r.stdout.strip().splitlines()[-1])
            print(name, json.dumps(result["runs"][name]), flush=True)
    atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
