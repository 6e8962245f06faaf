"""Headless driver: capture a video (or import a take) into a .blend and render the overlay picture.

Runs the add-on inside Blender's Python module (``bpy``) without a UI, through the same
operators as the panel::

    python -m dahyf_blender.devtools.headless --video hand.mp4 --out-dir out [--hands both]
        [--frame-range 0 120] [--take take.npz] [--render overlay.png]

It is what ``dahyf demo`` runs in a subprocess (the engine package never imports bpy).
Prints one JSON line with the results (paths, frames, seconds) last.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from dahyf.capture.settings import DEFAULT_SMOOTH, DEFAULT_THRESHOLD


def _register() -> bool:
    """Register the add-on unless it is already (an installed copy); True when this call did."""
    import bpy

    from .. import register

    if hasattr(bpy.types, "DAHYF_OT_capture_video"):
        return False
    register()
    return True


def render_overlay(scene, frame: int, video_path: str, out_png: str, width: int = 960, crop: bool = False) -> str:
    """Render the hand meshes at scene ``frame`` in camera view with Workbench, over the video frame.

    Parameters
    ----------
    frame : scene frame (video frame ``frame - FRAME_OFFSET``).
    out_png : where to write the composite (RGB PNG, ``width`` px wide).
    crop : cut a square around the rendered hand(s) (padded) instead of the whole frame.
    """
    import cv2
    import numpy as np

    import bpy

    from ..coords import FRAME_OFFSET

    scene.frame_set(frame)
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.display.shading.light = "STUDIO"
    scene.display.shading.color_type = "MATERIAL"
    scene.display.shading.show_cavity = True
    scene.render.film_transparent = True
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    tmp = out_png + ".hand.png"
    scene.render.filepath = tmp
    bpy.ops.render.render(write_still=True)
    hand = cv2.imread(tmp, cv2.IMREAD_UNCHANGED)
    os.unlink(tmp)
    cap = cv2.VideoCapture(video_path)
    cap.set(cv2.CAP_PROP_POS_FRAMES, frame - FRAME_OFFSET)
    ok, bg = cap.read()
    cap.release()
    if not ok:
        raise RuntimeError(f"could not read frame {frame - FRAME_OFFSET} of {video_path}")
    if hand.shape[:2] != bg.shape[:2]:
        hand = cv2.resize(hand, (bg.shape[1], bg.shape[0]), interpolation=cv2.INTER_AREA)
    alpha = hand[..., 3:4].astype(np.float32) / 255.0 * 0.8
    comp = (bg.astype(np.float32) * (1 - alpha) + hand[..., :3].astype(np.float32) * alpha).astype(np.uint8)
    if crop and (hand[..., 3] > 0).any():
        ys, xs = np.nonzero(hand[..., 3] > 0)
        cx, cy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
        half = int(0.65 * max(xs.max() - xs.min(), ys.max() - ys.min())) + 8
        half = min(half, min(comp.shape[:2]) // 2)
        x0 = int(np.clip(cx - half, 0, comp.shape[1] - 2 * half))
        y0 = int(np.clip(cy - half, 0, comp.shape[0] - 2 * half))
        comp = comp[y0:y0 + 2 * half, x0:x0 + 2 * half]
    if width and comp.shape[1] > width:
        comp = cv2.resize(comp, (width, round(comp.shape[0] * width / comp.shape[1])), interpolation=cv2.INTER_AREA)
    cv2.imwrite(out_png, comp)
    return out_png


def render_strip(scene, frames, video_path: str, out_png: str, width: int = 1280) -> str:
    """Overlay close-ups of several scene frames side by side (one row), ``width`` px wide in all."""
    import cv2
    import numpy as np

    tiles = []
    for f in frames:
        tmp = f"{out_png}.{f}.png"
        render_overlay(scene, int(f), video_path, tmp, width=0, crop=True)
        tile = cv2.imread(tmp)
        tiles.append(cv2.resize(tile, (320, 320), interpolation=cv2.INTER_AREA))
        os.unlink(tmp)
    strip = np.concatenate(tiles, axis=1)
    strip = cv2.resize(strip, (width, round(strip.shape[0] * width / strip.shape[1])), interpolation=cv2.INTER_AREA)
    cv2.imwrite(out_png, strip)
    return out_png


def best_frame(armatures) -> int:
    """The scene frame where the most hands have confident (not held) keys, earliest first."""
    import numpy as np

    from .. import compat, keying

    counts: dict[int, float] = {}
    for arm in armatures:
        owner = compat.channel_owner(arm)
        fc = next(f for f in owner.fcurves if f.data_path == f'["{keying.CONFIDENCE_PROP}"]')
        for kp in fc.keyframe_points:
            if kp.type != keying.FILLED_KEY_TYPE:
                counts[int(round(kp.co[0]))] = counts.get(int(round(kp.co[0])), 0.0) + 1.0 + kp.co[1]
    if not counts:
        return 1
    frames = np.array(sorted(counts))
    return int(frames[np.argmax([counts[f] for f in frames])])


def main(argv=None) -> int:
    """Run :func:`capture_main`, then unregister what it registered (bpy 4.2 as a module crashes at
    interpreter exit while add-on classes are still registered)."""
    registered = []
    try:
        return capture_main(argv, registered)
    finally:
        if registered:
            from .. import unregister

            unregister()


def capture_main(argv, registered: list) -> int:
    p = argparse.ArgumentParser(prog="python -m dahyf_blender.devtools.headless", description=__doc__.split("\n\n")[0])
    p.add_argument("--video", required=True, help="video file")
    p.add_argument("--out-dir", required=True, help="folder for the .blend, the take and the picture")
    p.add_argument("--hands", choices=("right", "left", "both"), default="both")
    p.add_argument("--frame-range", type=int, nargs=2, metavar=("START", "END"), default=None,
                   help="video frames START..END-1 (default: the whole video)")
    p.add_argument("--take", default=None, help="import this take (.npz) instead of capturing the video")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    p.add_argument("--smooth", type=float, default=DEFAULT_SMOOTH)
    p.add_argument("--name", default=None, help="base name of the outputs (default: the video's name)")
    p.add_argument("--render", default=None, help="also render the overlay picture to this PNG")
    p.add_argument("--strip", default=None, help="also render 4 evenly spaced frames side by side to this PNG")
    p.add_argument("--checkpoint", default="", help="engine checkpoint (default: the bundled engine)")
    p.add_argument("--device", choices=("AUTO", "CPU", "CUDA"), default="AUTO")
    args = p.parse_args(argv)

    import bpy
    import numpy as np

    t0 = time.perf_counter()
    os.makedirs(args.out_dir, exist_ok=True)
    name = args.name or os.path.splitext(os.path.basename(args.video))[0]
    bpy.ops.wm.read_homefile(use_empty=True)
    if _register():
        registered.append(True)
    from ..prefs import get_prefs

    prefs = get_prefs()
    prefs.checkpoint, prefs.device = args.checkpoint, args.device
    blend = os.path.abspath(os.path.join(args.out_dir, name + ".blend"))
    take_path = os.path.abspath(os.path.join(args.out_dir, name + ".take.npz"))
    if args.take:
        result = bpy.ops.dahyf.import_take(filepath=os.path.abspath(args.take), video=os.path.abspath(args.video))
    else:
        kw = dict(filepath=os.path.abspath(args.video), hands=args.hands.upper(), threshold=args.threshold,
                  smoothing=args.smooth, take_path=take_path)
        if args.frame_range:
            kw.update(use_frame_range=True, frame_start=args.frame_range[0], frame_end=args.frame_range[1])
        result = bpy.ops.dahyf.capture_video("EXEC_DEFAULT", **kw)
    if "FINISHED" not in result:
        print(json.dumps({"ok": False, "error": "capture failed (see the messages above)"}))
        return 1
    t_capture = time.perf_counter() - t0
    from ..rig import TAKE_PROP

    armatures = [o for o in bpy.context.scene.objects if o.type == "ARMATURE" and TAKE_PROP in o]
    scene = bpy.context.scene
    frame = best_frame(armatures)
    scene.frame_set(frame)
    bpy.ops.wm.save_as_mainfile(filepath=blend)
    out = {"ok": True, "blend": blend, "take": take_path if not args.take else os.path.abspath(args.take),
           "armatures": [a.name for a in armatures], "actions": [a.animation_data.action.name for a in armatures],
           "frames": [scene.frame_start, scene.frame_end], "capture_s": round(t_capture, 2)}
    if args.render:
        t1 = time.perf_counter()
        out["picture"] = render_overlay(scene, frame, os.path.abspath(args.video), os.path.abspath(args.render))
        out["picture_frame"] = frame
        out["render_s"] = round(time.perf_counter() - t1, 2)
    if args.strip:
        picks = np.linspace(scene.frame_start, scene.frame_end, 6)[1:-1].round().astype(int).tolist()
        out["strip"] = render_strip(scene, picks, os.path.abspath(args.video), os.path.abspath(args.strip))
        out["strip_frames"] = picks
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
