"""Benchmark: keying one minute of 30 fps capture for two hands, bulk vs one keyframe_insert per key.

    python -m dahyf_blender.devtools.bench_keying [--seconds 60] [--fps 30] [--out benchmarks/keying.md]

Both methods write the same channels (16 quaternions, wrist location, confidence) for the same
poses onto two open-hand rigs in the same process; the bulk path is :class:`.keying.TrackKeyer`
(MANO → local quaternions in numpy, then ``keyframe_points.foreach_set`` per F-curve).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np


def _rigs(context, sides=("right", "left")):
    import dahyf

    from .. import rig

    out = []
    for side in sides:
        arm, _ = rig.build_hand_rig(context, dahyf.load_hand_model("open", side), side)
        out.append(arm)
    return out


def _poses(n: int, seed: int):
    rng = np.random.default_rng(seed)
    pose = np.cumsum(rng.normal(0, 0.02, (n, 16, 3)), axis=0)
    transl = np.c_[rng.normal(0, 0.02, (n, 2)), np.full(n, 0.6)]
    conf = rng.uniform(0.2, 1.0, n)
    return pose, transl, conf, conf < 0.4


def bulk(context, arms, data) -> float:
    from dahyf.hand.tables import BONE_NAMES

    from .. import keying, rig

    t0 = time.perf_counter()
    for arm, (pose, transl, conf, filled) in zip(arms, data):
        k = keying.TrackKeyer(arm, f"bench.bulk.{arm.name}", BONE_NAMES, rig.bone_rest_quaternions(arm))
        k.append(np.arange(len(pose)) + 1, pose, transl, conf, filled)
    return time.perf_counter() - t0


def streamed(context, arms, data, chunk: int = 32) -> float:
    """Bulk keying fed chunk by chunk, as during a modal capture (each chunk rewrites the curves)."""
    from dahyf.hand.tables import BONE_NAMES

    from .. import keying, rig

    t0 = time.perf_counter()
    keyers = [keying.TrackKeyer(arm, f"bench.stream.{arm.name}", BONE_NAMES, rig.bone_rest_quaternions(arm))
              for arm in arms]
    n = len(data[0][0])
    for s in range(0, n, chunk):
        for k, (pose, transl, conf, filled) in zip(keyers, data):
            e = min(n, s + chunk)
            k.append(np.arange(s, e) + 1, pose[s:e], transl[s:e], conf[s:e], filled[s:e])
    for k in keyers:
        k.flush()
    return time.perf_counter() - t0


def per_key(context, arms, data) -> float:
    """The naive way: set the pose, then keyframe_insert per channel per frame."""
    import bpy
    from dahyf.hand.tables import BONE_NAMES

    from .. import keying, rig

    t0 = time.perf_counter()
    for arm, (pose, transl, conf, filled) in zip(arms, data):
        arm.animation_data_create()
        arm.animation_data.action = bpy.data.actions.new(f"bench.perkey.{arm.name}")
        rest = rig.bone_rest_quaternions(arm)
        q = keying.local_quaternions(pose, rest)
        loc = keying.local_locations(transl, rest[0])
        pbs = [arm.pose.bones[b] for b in BONE_NAMES]
        arm[keying.CONFIDENCE_PROP] = 1.0
        for f in range(len(pose)):
            frame = f + 1
            for j, pb in enumerate(pbs):
                pb.rotation_quaternion = q[f, j]
                pb.keyframe_insert("rotation_quaternion", frame=frame)
            pbs[0].location = loc[f]
            pbs[0].keyframe_insert("location", frame=frame)
            arm[keying.CONFIDENCE_PROP] = float(conf[f])
            arm.keyframe_insert(f'["{keying.CONFIDENCE_PROP}"]', frame=frame)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--repeats", type=int, default=3, help="bulk runs (best is reported)")
    p.add_argument("--out", default=None, help="write the markdown table here")
    args = p.parse_args(argv)

    import bpy

    n = int(round(args.seconds * args.fps))
    data = [_poses(n, 0), _poses(n, 1)]
    bpy.ops.wm.read_homefile(use_empty=True)
    ctx = bpy.context
    bulk_s = []
    for _ in range(args.repeats):
        arms = _rigs(ctx)
        bulk_s.append(bulk(ctx, arms, data))
    stream_s = streamed(ctx, _rigs(ctx), data)
    arms = _rigs(ctx)
    naive_s = per_key(ctx, arms, data)
    keys = 2 * n * (16 * 4 + 3 + 1)
    best = min(bulk_s)
    lines = [
        "# Keying benchmark",
        "",
        f"Keying {args.seconds:g} s of {args.fps:g} fps capture for two hands ({n} frames per hand, "
        f"{keys} keys: 16 quaternions + wrist location + confidence per frame and hand).",
        "",
        "| method | time (s) | keys/s |",
        "|---|---:|---:|",
        f"| bulk: `TrackKeyer` (numpy + `keyframe_points.foreach_set`), best of {args.repeats} | {best:.3f} | {keys / best:,.0f} |",
        f"| bulk, streamed in 32-frame chunks (modal capture) | {stream_s:.3f} | {keys / stream_s:,.0f} |",
        f"| per key: `keyframe_insert` per channel per frame | {naive_s:.2f} | {keys / naive_s:,.0f} |",
        f"| **speed-up** | **{naive_s / best:.0f}×** | |",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared), Python {platform.python_version()}, "
        f"Blender (bpy) {bpy.app.version_string}, {platform.platform()}.",
        "",
        "Command: `.venv/bin/python -m dahyf_blender.devtools.bench_keying --out benchmarks/keying.md`",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        from dahyf.fileio import atomic_write_text

        atomic_write_text(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
