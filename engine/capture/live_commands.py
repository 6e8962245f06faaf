"""`dahyf live SOURCE [--record take.npz] [--seconds N] [--stats]`: live capture from the command line.

A preview window (skeleton over the frame, fps, latency) when a display exists, else headless.
``q`` / Esc in the window, Ctrl-C, ``--seconds`` or the source's end stop it; a recording is
saved in every case, also after the source failed mid-take.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from ..errors import DaHyFUserError
from .commands import add_focal_arguments
from .settings import DEFAULT_THRESHOLD

WINDOW = "DaHyF live (q or Esc to stop)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .live import DEFAULT_LIVE_SMOOTH

    p.add_argument("source", help="camera index (0 = first camera), device path (/dev/video0), network stream URL "
                                  "(rtsp://...), or a video file (played at its real frame rate)")
    p.add_argument("--record", metavar="NPZ", help="record a take (.npz, plus a .json sidecar), same format as capture")
    p.add_argument("--force", action="store_true", help="overwrite an existing take (and its .json sidecar)")
    p.add_argument("--seconds", type=float, help="stop after this many seconds (default: until q, Ctrl-C or the end)")
    p.add_argument("--stats", action="store_true", help="print JSON statistics at the end: frames in, processed, "
                                                        "dropped, latency percentiles (ms), fps")
    p.add_argument("--hands", choices=("right", "left", "both"), default="right", help="hands to capture (default right)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"confidence below which a frame holds the last confident pose (default {DEFAULT_THRESHOLD})")
    p.add_argument("--smooth", type=float, default=DEFAULT_LIVE_SMOOTH,
                   help=f"causal smoothing, 0 (off) to 1 (default {DEFAULT_LIVE_SMOOTH})")
    p.add_argument("--mirror", action="store_true", help="flip frames left-right (selfie view: the take then moves "
                                                         "like your reflection)")
    p.add_argument("--headless", action="store_true", help="no preview window even when a display exists")
    p.add_argument("--size", metavar="WxH", help="frame size to ask a camera for, e.g. 640x480")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--checkpoint", metavar="PATH", help="engine checkpoint (default: the bundled engine)")
    p.add_argument("--mano", metavar="DIR", default="open",
                   help="folder with MANO_RIGHT.pkl / MANO_LEFT.pkl (default: the bundled open hand model)")
    add_focal_arguments(p, "sqrt(W^2+H^2)")
    p.add_argument("--quiet", action="store_true", help="no status line")


def display_available() -> bool:
    """True when a window can be shown (an X11/Wayland display on Linux; always elsewhere)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def _size(text: str | None):
    if not text:
        return None
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise DaHyFUserError(f"--size must look like WxH (e.g. 640x480), got {text!r}.") from None


def draw_live(image: np.ndarray, pose, handedness, stats_line: str) -> np.ndarray:
    """Draw the skeleton of each hand of ``pose`` (a LivePose) and a status line over ``image`` (BGR)."""
    import cv2

    from .preview import draw_hand

    for r in range(len(pose.rows["frame"])):
        side = handedness[int(pose.rows["track"][r])]
        draw_hand(image, pose.rows["joints2d_proj"][r], [], side, bool(pose.rows["filled"][r]),
                  pose.rows["landmarks2d"][r])
    cv2.putText(image, stats_line, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 2, cv2.LINE_AA)
    cv2.putText(image, stats_line, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (30, 30, 30), 1, cv2.LINE_AA)
    return image


def _open_window() -> bool:
    import cv2

    try:
        cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE)
        return True
    except cv2.error:   # an OpenCV without GUI support
        print("dahyf live: no preview window (this OpenCV has no GUI support); running headless.", file=sys.stderr)
        return False


def _loop(live, seconds: float | None, window: bool, quiet: bool) -> None:
    """Show / report until the time is up, the session ends, or q / Esc."""
    import cv2

    t0, last, last_status = time.perf_counter(), -1, 0.0
    while live.running and (seconds is None or time.perf_counter() - t0 < seconds):
        pose = live.wait(after=last, timeout=0.1)
        now = time.perf_counter()
        if pose is not None and pose.index != last:
            last = pose.index
            if window and pose.image is not None:
                line = f"{live.processed / max(now - t0, 1e-6):.1f} fps  latency {pose.latency_s * 1e3:.0f} ms"
                cv2.imshow(WINDOW, draw_live(pose.image.copy(), pose, live.handedness, line))
        if window and cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            break
        if not quiet and now - last_status >= 1.0:
            last_status = now
            s = live.stats()
            p50 = s["latency_ms"]["p50"]
            print(f"\rdahyf live: {s['frames_processed']} frames, {s['fps']:.1f} fps, dropped {s['frames_dropped']}, "
                  f"latency p50 {p50 if p50 is None else round(p50)} ms" + (" [recording]" if live.recording else ""),
                  end="", file=sys.stderr, flush=True)
    if not quiet:
        print(file=sys.stderr)


def run(args) -> int:
    from .commands import claim_outputs

    out = Path(args.record) if args.record else None
    with ExitStack() as held:   # the take is checked and locked before the session, as by dahyf capture
        code = claim_outputs("dahyf live", held, out, args.force) if out is not None else 0
        return code or _session(args, out)


def _session(args, out: Path | None) -> int:
    """Run the session, with the take's output checked and locked by :func:`run`."""
    from .engine import load_engine
    from .live import LiveCapture

    window = not args.headless and display_available()
    live = None
    try:
        engine = load_engine(args.checkpoint, device=args.device, hand_model=args.mano)
        live = LiveCapture(engine, args.source, hands=args.hands, threshold=args.threshold, smooth=args.smooth,
                           mirror=args.mirror, focal=args.focal, lens_mm=args.lens, keep_images=window, size=_size(args.size))
        window = window and _open_window()
        live.start()
        if out is not None:
            live.record()
        try:
            _loop(live, args.seconds, window, args.quiet)
        except KeyboardInterrupt:
            print("\ndahyf live: interrupted; stopping.", file=sys.stderr)
        take = live.stop()
    except DaHyFUserError as exc:   # could not start: nothing was recorded
        print(f"dahyf live: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if window:
            import cv2

            cv2.destroyAllWindows()
    return _finish(live, take, out, args.stats, args.force)


def _finish(live, take, out: Path | None, stats: bool, force: bool) -> int:
    """Save the recording, report the session's error and the statistics; the exit status."""
    code = 0
    if live.error is not None:
        print(f"dahyf live: error: {live.error}", file=sys.stderr)
        code = 1
    if out is not None:
        if take is None:
            print("dahyf live: no hand was recorded; nothing was written.", file=sys.stderr)
            code = code or 1
        else:
            try:
                path = take.save(out, overwrite=force)
            except DaHyFUserError as exc:
                print(f"dahyf live: error: {exc}", file=sys.stderr)
                return 1
            kept = " (kept what was recorded before the error)" if live.error is not None else ""
            print(f"wrote {path} and {path.with_suffix('.json')}: {len(take)} rows over "
                  f"{take.meta['frames_processed']} frames{kept}", file=sys.stderr)
    if stats:
        print(json.dumps(live.stats(), indent=1))
    return code
