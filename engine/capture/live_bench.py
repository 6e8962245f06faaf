"""Live capture benchmark: a video file played in real time through the live path (issue 14).

    dahyf bench live VIDEO [--size 640x480] [--frames 300] [--hands right] [--json]

Figures: frames in / processed / dropped, latency frame arrival → pose ready (percentiles), fps;
the recorded take's jitter and lag against its raw landmarks (capture.bench.quality); and the
checks a file capture of the same video passes, on the live take: coverage, re-projection, no
identity jumps (each live track's hand is the file capture's hand of that side).
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .bench import add_video_arguments, bench_video, hand_size, machine_info, quality, write_result
from .errors import CaptureError


def run_live(engine, video, hands: str, smooth: float | None = None) -> tuple[dict, object]:
    """Play ``video`` in real time through a recording LiveCapture; (stats, take)."""
    options = {"hands": hands} if smooth is None else {"hands": hands, "smooth": smooth}
    live = engine.live(str(video), **options).start()
    live.record()
    live.join()
    take = live.stop()
    if live.error is not None:
        raise CaptureError(f"the live run failed: {live.error}")
    return live.stats(), take


def same_checks(live_take, file_take) -> dict:
    """The live take against a file capture of the same video: coverage, re-projection, identity.

    ``identity_jump_frames``: frames where a live track's landmarks sit more than half a hand size
    from the file capture's track of the same side (the other hand, or a swap).
    """
    first = int(live_take.meta.get("first_source_frame", 0))
    out = {"live_hand_frames": int(len(np.unique(live_take.frame))), "frames_processed":
           int(live_take.meta.get("frames_processed", 0)), "file_hand_frames": int(len(np.unique(file_take.frame)))}
    out["coverage_of_processed"] = out["live_hand_frames"] / max(out["frames_processed"], 1)
    size = hand_size(live_take.landmarks2d)
    d = np.linalg.norm(live_take.joints2d_proj - live_take.landmarks2d, axis=-1).mean(-1) / np.maximum(size, 1.0)
    out["median_dist_per_hand_size"] = float(np.median(d)) if len(d) else None
    fsize = hand_size(file_take.landmarks2d)
    fd = np.linalg.norm(file_take.joints2d_proj - file_take.landmarks2d, axis=-1).mean(-1) / np.maximum(fsize, 1.0)
    out["file_median_dist_per_hand_size"] = float(np.median(fd)) if len(fd) else None
    jumps = 0
    for t in live_take.tracks():
        ref = file_take.track_for(t.handedness)
        if ref is None or not len(t):
            jumps += len(t)
            continue
        _, i_ref, i_live = np.intersect1d(ref.frame, t.frame + first, return_indices=True)
        gap = np.linalg.norm(ref.landmarks2d[i_ref].mean(1) - t.landmarks2d[i_live].mean(1), axis=-1)
        jumps += int((gap > 0.5 * hand_size(t.landmarks2d[i_live])).sum())
    out["identity_jump_frames"] = jumps
    return out


def add_arguments(p) -> None:
    add_video_arguments(p, hands="right", out="benchmarks/live.json")
    p.add_argument("--smooth", type=float, help="live smoothing (default: live capture's default)")


def run(args) -> int:
    from .engine import load_engine

    try:
        engine = load_engine(args.checkpoint, device="cpu")
        with tempfile.TemporaryDirectory(prefix="dahyf-bench-live-") as tmp:
            src = bench_video(args, tmp)
            engine.capture(src, hands=args.hands, frame_range=(0, 5))   # warm-up (first-call costs)
            stats, take = run_live(engine, src, args.hands, args.smooth)
            file_take = engine.capture(src, hands=args.hands, filter="one_euro")
    except CaptureError as exc:
        print(f"dahyf bench live: error: {exc}", file=sys.stderr)
        return 1
    if take is None:
        print("dahyf bench live: error: no hand was recorded.", file=sys.stderr)
        return 1
    result = {"video": Path(args.video).name, "hands": args.hands, "smooth": take.meta["smooth"], "live": stats,
              "quality": quality(take, len(np.unique(file_take.frame))), "same_checks": same_checks(take, file_take),
              "machine": machine_info(), "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    out = write_result(result, args)
    if not args.json:
        s, q, c = stats, result["quality"], result["same_checks"]
        print(f"{result['video']} at {s['image_size'][0]}x{s['image_size'][1]}, {s['source_fps']:.0f} fps, "
              f"{s['frames_in']} frames: processed {s['processed_share']:.1%}, latency p50 "
              f"{s['latency_ms']['p50']:.1f} ms, p95 {s['latency_ms']['p95']:.1f} ms")
        jit, lag = q.get("jitter_reduction"), q.get("max_abs_lag_frames")
        steadiness = (f"jitter {jit:.0%} below the raw landmarks" if jit is not None
                      else "jitter not measured (too few consecutive frames)") + \
            (f", lag {lag} frames" if lag is not None else ", lag not measured")
        print(f"{steadiness}; coverage {c['coverage_of_processed']:.1%}, re-projection "
              f"{c['median_dist_per_hand_size']:.1%} of the hand size, identity jumps {c['identity_jump_frames']}")
        print(f"wrote {out}")
    return 0
