"""Install an extension zip into a bare Blender and capture with it: run as a separate process.

"Bare" means what a user's Blender has: the ``bpy`` module and Blender's numpy, nothing else of the
venv (the process runs with ``-I -S``: no site-packages, no .pth files, no PYTHONPATH). The zip's
wheels are then the only source of MediaPipe, OpenCV and the engine, so a wheel missing from the
zip fails here.

    python -I -S bare_blender.py --modules DIR --zip ZIP [--video V --frames N] [--expect-refusal]

DIR holds links to ``bpy`` and ``numpy`` (see ``bare_modules``). Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def bare_modules(dest: Path, module_files: list[str]) -> Path:
    """Links in ``dest`` to the package folders (and their ``*.libs`` siblings) of the given modules' ``__file__``."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in module_files:
        pkg = Path(f).resolve().parent
        for src in [pkg, *pkg.parent.glob(pkg.name + ".libs")]:
            link = dest / src.name
            if not link.exists():
                link.symlink_to(src, target_is_directory=True)
    return dest


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--modules", required=True)
    ap.add_argument("--zip", required=True)
    ap.add_argument("--video", default="")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--expect-refusal", action="store_true")
    a = ap.parse_args()
    sys.path.insert(0, a.modules)
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="dahyf-bare-blender-"))
    import bpy

    out = {"blender": list(bpy.app.version), "python": list(sys.version_info[:2])}
    t0 = time.perf_counter()
    try:
        result = bpy.ops.extensions.package_install_files(filepath=a.zip, repo="user_default", enable_on_install=True)
        out["install"] = sorted(result)
    except Exception as exc:  # Blender reports a refused install as an exception of the operator
        out["install_error"] = str(exc)
    out["install_s"] = round(time.perf_counter() - t0, 2)
    module = "bl_ext.user_default.dahyf_blender"
    out["enabled"] = module in bpy.context.preferences.addons
    out["modules_after_register"] = sorted(m for m in ("torch", "cv2", "mediapipe") if m in sys.modules)
    if out["enabled"] and a.video:
        bpy.ops.wm.read_homefile(use_empty=True)
        t0 = time.perf_counter()
        try:
            bpy.ops.dahyf.capture_video("EXEC_DEFAULT", filepath=a.video, hands="BOTH", use_frame_range=True,
                                        frame_start=0, frame_end=a.frames)
        except Exception as exc:
            out["capture_error"] = str(exc)
        out["capture_s"] = round(time.perf_counter() - t0, 2)
        arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
        out["armatures"] = sorted(o.name for o in arms)
        out["keyed_frames"] = sorted({int(round(f)) for o in arms if o.animation_data and o.animation_data.action
                                      for f in _key_frames(o)})
        mp = sys.modules.get("mediapipe")
        out["mediapipe"] = getattr(mp, "__version__", None)
        out["torch_loaded"] = "torch" in sys.modules
        out["loaded_from_extension"] = sorted({m.split(".")[0] for m, mod in list(sys.modules.items())
                                               if "extensions" in str(getattr(mod, "__file__", "") or "")
                                               and ".local" in str(getattr(mod, "__file__", "") or "")})
    print("BARE_BLENDER_RESULT " + json.dumps(out), flush=True)
    return 0


def _key_frames(obj) -> list[float]:
    """Frames keyed on ``obj``'s action, through the layered (4.4+) or legacy (4.2) F-curve access."""
    action = obj.animation_data.action
    curves = getattr(action, "fcurves", None)
    if curves is None or not len(curves):
        from bpy_extras import anim_utils

        bag = anim_utils.action_get_channelbag_for_slot(action, obj.animation_data.action_slot)
        curves = bag.fcurves if bag else []
    return [k.co[0] for fc in curves for k in fc.keyframe_points]


if __name__ == "__main__":
    sys.exit(main())
