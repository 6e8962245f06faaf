"""``dahyf demo``: the main job — capture the bundled sample video into a .blend with a picture.

The engine never imports Blender: the Blender part runs in a subprocess with this same Python
(``python -m dahyf_blender.devtools.headless``), which needs the ``bpy`` module and the repository's
``dahyf_blender`` package. Without them the demo still captures the take (.npz) and says why no
.blend was made.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from .assets import SAMPLE_VIDEO
REPO = Path(__file__).resolve().parent.parent


def find_sample_video() -> Path | None:
    """The bundled sample video (dahyf.assets.SAMPLE_VIDEO), or None where it is missing."""
    return SAMPLE_VIDEO if SAMPLE_VIDEO.is_file() else None


def add_arguments(p) -> None:
    p.add_argument("--out", default="out", help="output folder (default: out/)")
    p.add_argument("--video", default=None, help="video to capture (default: the bundled sample video)")
    p.add_argument("--hands", choices=("right", "left", "both"), default=None,
                   help="hands to capture (default: right for the bundled sample, a right hand; both otherwise)")
    p.add_argument("--frame-range", type=int, nargs=2, metavar=("START", "END"), default=None,
                   help="only video frames START..END-1")
    p.add_argument("--checkpoint", default=None, help="engine checkpoint (default: the bundled engine)")
    p.add_argument("--no-render", action="store_true", help="skip the overlay picture")


def _blender_available() -> str | None:
    """None when the Blender part can run, else the reason it cannot."""
    if importlib.util.find_spec("bpy") is None:
        return "Blender's Python module bpy is not installed (pip install bpy==5.0.1, Python 3.11)"
    if not (REPO / "dahyf_blender" / "devtools" / "headless.py").is_file():
        return f"the add-on package dahyf_blender/ is not next to the engine (run from a checkout of the repository)"
    return None


def run(args) -> int:
    video = Path(args.video) if args.video else find_sample_video()
    if video is None:
        print(f"dahyf demo: the bundled sample video {SAMPLE_VIDEO} is missing. "
              "Pass one with --video PATH.", file=sys.stderr)
        return 2
    if not video.is_file():
        print(f"dahyf demo: video not found: {video}. Pass an existing file with --video.", file=sys.stderr)
        return 2
    args.hands = args.hands or ("both" if args.video else "right")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    reason = _blender_available()
    if reason is not None:
        return _take_only(video, out, args, reason)
    cmd = [sys.executable, "-m", "dahyf_blender.devtools.headless", "--video", str(video.resolve()),
           "--out-dir", str(out.resolve()), "--hands", args.hands]
    if args.frame_range:
        cmd += ["--frame-range", *map(str, args.frame_range)]
    if args.checkpoint:
        cmd += ["--checkpoint", str(Path(args.checkpoint).resolve())]
    if not args.no_render:
        cmd += ["--render", str((out / f"{video.stem}_overlay.png").resolve()),
                "--strip", str((out / f"{video.stem}_frames.png").resolve())]
    env = dict(os.environ)
    env.setdefault("BLENDER_USER_RESOURCES", str((out / ".blender-user").resolve()))
    proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    result = json.loads(lines[-1]) if lines else {"ok": False}
    if proc.returncode != 0 or not result.get("ok"):
        print(proc.stdout[-4000:], file=sys.stderr)
        print("dahyf demo: the Blender step failed (messages above).", file=sys.stderr)
        return 1
    print(f"blend:   {result['blend']}")
    print(f"take:    {result['take']}")
    if "picture" in result:
        print(f"picture: {result['picture']} (scene frame {result['picture_frame']})")
    if "strip" in result:
        print(f"frames:  {result['strip']} (scene frames {', '.join(map(str, result['strip_frames']))})")
    print(f"hands:   {', '.join(result['armatures'])}; frames {result['frames'][0]}-{result['frames'][1]}; "
          f"capture {result['capture_s']} s")
    return 0


def _take_only(video: Path, out: Path, args, reason: str) -> int:
    import dahyf

    try:
        engine = dahyf.load_engine(args.checkpoint)
        take = engine.capture(str(video), hands=args.hands,
                              frame_range=tuple(args.frame_range) if args.frame_range else None)
        path = take.save(out / f"{video.stem}.take.npz")
    except dahyf.CaptureError as exc:
        print(f"dahyf demo: error: {exc}", file=sys.stderr)
        return 1
    print(f"take:    {path}")
    print(f"no .blend: {reason}. Import the take in Blender with File > Import > DaHyF Take.")
    return 0
