"""Benchmark: a live session in headless Blender, driven by its timer function, recording a take.

    python -m dahyf_blender.devtools.bench_live [--video engine/assets/sample/open_hand_sample.mp4]
        [--hands right] [--drive] [--out benchmarks/live_blender.md]

The video is played in real time through the live path; the session's tick (what ``bpy.app.timers``
calls in the UI) is called here the same way, every ``live.TICK_S`` seconds, from Record to the
video's end. Reported: main-thread time per tick (percentiles; the last tick keys the whole take,
so it is given apart), the engine's figures in the same process, and the take. ``--drive`` also
drives a second armature (a right hand with Mixamo bone names) through the retargeter.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def mixamo_hand(context):
    """A right-hand armature with Mixamo bone names (the open hand's rig, renamed): a drive target."""
    import dahyf

    from .. import rig

    arm, _ = rig.build_hand_rig(context, dahyf.load_hand_model("open", "right"), "right", name="Character")
    for bone in list(arm.data.bones):
        finger, digit = bone.name.rstrip("123"), bone.name[-1]
        bone.name = "mixamorig:RightHand" + ("" if bone.name == "wrist" else f"{finger.capitalize()}{digit}")
    return arm


def run(video: str, hands: str, drive: bool = False) -> dict:
    """One recorded live session over ``video``; the figures."""
    import bpy

    from .. import live

    bpy.ops.wm.read_homefile(use_empty=True)
    target = mixamo_hand(bpy.context) if drive else None
    with tempfile.TemporaryDirectory(prefix="dahyf-bench-live-") as tmp:
        session = live.LiveSession(bpy.context, video, hands=hands, take_path=os.path.join(tmp, "live.npz"),
                                   drive=target)
        session.wait_started()
        session.record()
        session.tick_s.clear()
        interval, updates = 0.0, []
        while interval is not None:
            time.sleep(interval)
            seen = session._last_index
            interval = session.tick()
            if interval is not None and session._last_index != seen:   # a new pose: what a redraw evaluates
                t0 = time.perf_counter()
                bpy.context.view_layer.update()
                updates.append(time.perf_counter() - t0)
        session.wait_saved()
        ticks = np.array(session.tick_s) * 1e3
    if session.state != "stopped" or not session.takes:
        raise RuntimeError(f"the live session did not record a take: {session.message}")
    take, actions = session.takes[-1]
    regular = ticks[:-1]
    return {"ticks": len(ticks), "tick_ms_p50": float(np.percentile(regular, 50)),
            "tick_ms_p95": float(np.percentile(regular, 95)), "tick_ms_max": float(regular.max()),
            "last_tick_ms": float(ticks[-1]), "engine": session.live.stats(), "rows": len(take),
            "update_ms_p50": float(np.percentile(updates, 50) * 1e3), "update_ms_p95": float(np.percentile(updates, 95) * 1e3),
            "actions": actions}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    from dahyf.assets import SAMPLE_VIDEO

    p.add_argument("--video", default=str(SAMPLE_VIDEO))
    p.add_argument("--hands", default="right", choices=("right", "left", "both"))
    p.add_argument("--drive", action="store_true", help="also drive a Mixamo-named hand through the retargeter")
    p.add_argument("--out", default=None, help="write the markdown here")
    args = p.parse_args(argv)

    import bpy

    r = run(args.video, args.hands, args.drive)
    e = r["engine"]
    lines = [
        "# Live capture in Blender: main-thread time per tick",
        "",
        f"`{Path(args.video).name}` played in real time ({e['image_size'][0]}×{e['image_size'][1]}, "
        f"{e['source_fps']:g} fps, {e['frames_in']} frames), hands {args.hands}, recording throughout"
        + (", driving a second armature through the retargeter." if args.drive else "."),
        "",
        "| figure | value |",
        "|---|---:|",
        f"| timer ticks | {r['ticks']} |",
        f"| main-thread time per tick, p50 | {r['tick_ms_p50']:.3f} ms |",
        f"| main-thread time per tick, p95 (target ≤ 5 ms) | **{r['tick_ms_p95']:.3f} ms** |",
        f"| main-thread time per tick, max (before the last) | {r['tick_ms_max']:.3f} ms |",
        f"| depsgraph update per new pose (what the next redraw evaluates), p50 / p95 | "
        f"{r['update_ms_p50']:.2f} / {r['update_ms_p95']:.2f} ms |",
        f"| last tick: keys the take ({r['rows']} rows) into {', '.join(r['actions'])} (saved on a thread) | "
        f"{r['last_tick_ms']:.1f} ms |",
        f"| frames processed (same process as Blender) | {e['frames_processed']} / {e['frames_in']} "
        f"({e['processed_share']:.1%}) |",
        f"| latency frame → pose, p50 / p95 | {e['latency_ms']['p50']:.1f} / {e['latency_ms']['p95']:.1f} ms |",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
        f"Blender (bpy) {bpy.app.version_string}, {platform.platform()}; load average "
        f"{os.getloadavg()[0]:.1f}.",
        "",
        "Command: `.venv/bin/python -m dahyf_blender.devtools.bench_live" + (" --drive" if args.drive else "")
        + " --out benchmarks/live_blender" + ("_drive" if args.drive else "") + ".md`",
        "",
    ]
    print("\n".join(lines))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        from dahyf.fileio import atomic_write_text

        atomic_write_text(args.out, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
