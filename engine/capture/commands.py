"""`dahyf capture VIDEO -o take.npz`: the command line front of Engine.capture (+ preview)."""
from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path

from ..errors import DaHyFUserError
from ..fileio import check_output, output_lock
from .errors import CaptureError
from .settings import DEFAULT_SMOOTH, DEFAULT_THRESHOLD, TYPICAL_LENSES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", help="the video to capture (.mp4, .mov, ...)")
    p.add_argument("-o", "--out", required=True, help="the take to write (.npz, plus a .json sidecar)")
    p.add_argument("--hands", choices=("right", "left", "both"), default="both",
                   help="which hands to capture (default: both)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"confidence below which a frame holds the last confident pose (default {DEFAULT_THRESHOLD})")
    p.add_argument("--smooth", type=float, default=DEFAULT_SMOOTH,
                   help=f"temporal smoothing, 0 (off) to 1 (default {DEFAULT_SMOOTH})")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--preview", metavar="MP4", help="also write a preview video with the hands drawn over it")
    p.add_argument("--checkpoint", metavar="PATH", help="engine checkpoint (default: the bundled engine)")
    p.add_argument("--mano", metavar="DIR", default="open",
                   help="folder with MANO_RIGHT.pkl / MANO_LEFT.pkl (default: the bundled open hand model)")
    p.add_argument("--frames", metavar="START:END", help="capture only these frames (END exclusive)")
    add_focal_arguments(p, "the container's 35 mm-equivalent focal length where the phone wrote one, else "
                           "sqrt(W^2+H^2)")
    p.add_argument("--self-calibrate", action="store_true",
                   help="experimental: without --lens/--focal or a focal in the container, estimate the focal from "
                        "the first 3 s of hands' perspective (measured unreliable: benchmarks/fidelity.md)")
    p.add_argument("--force", action="store_true",
                   help="overwrite an existing take (and its .json sidecar) or preview")
    p.add_argument("--no-recover", dest="recover", action="store_false",
                   help="one forward pass only: no coverage recovery (backward re-tracking, region "
                        "re-detection, short gaps filled); faster, fewer frames with a hand")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_focal_arguments(p: argparse.ArgumentParser, default: str) -> None:
    """``--focal PX`` or ``--lens MM`` (one of them): the camera's focal length, which sets the hands'
    distance (depth = focal x hand size / size in the picture). ``default``: what is used without either."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--lens", type=float, metavar="MM",
                   help="the camera's lens as its 35 mm-equivalent focal length in mm, as phone spec sheets and "
                        f"camera settings give it ({TYPICAL_LENSES}); "
                        f"the hands' true distance needs it (default: {default})")
    g.add_argument("--focal", type=float, metavar="PX",
                   help="the focal length in pixels instead (below 0.1*max(W, H) it is refused as a likely lens "
                        "focal length in mm)")


def _frame_range(text: str | None):
    if not text:
        return None
    try:
        start, _, end = text.partition(":")
        return int(start or 0), (int(end) if end else None)
    except ValueError:
        raise CaptureError(f"--frames must look like START:END (e.g. 0:300), got {text!r}.") from None


def claim_outputs(prog: str, held: ExitStack, take: Path, force: bool, extra: tuple[tuple[Path, str], ...] = ()) -> int:
    """Get a command's outputs ready before its work starts (not after minutes of it); the exit status.

    The take (``.npz``) and its ``.json`` sidecar, plus ``extra`` ((path, what) pairs, e.g. a
    preview): their folders are made, each is checked writable and, unless ``force``, not taken
    (:func:`dahyf.fileio.check_output`), and each is locked (:func:`dahyf.fileio.output_lock`; the
    take's lock covers its sidecar) for as long as ``held`` stays open. Shared by ``dahyf capture``
    and ``dahyf live --record``.

    Returns 0 when all is set; else the error is printed as ``{prog}: error: ...`` and the status is
    returned: 2 for a take that is not an ``.npz`` or a folder that cannot be made, 1 for an output
    that exists (without ``force``), cannot be written or is being written by another process.
    """
    if take.suffix != ".npz":
        print(f"{prog}: error: the take must be an .npz file, got {take}", file=sys.stderr)
        return 2
    outputs = [(take, "take"), (take.with_suffix(".json"), "take's sidecar"), *extra]
    for target, _ in outputs:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"{prog}: error: cannot create the folder for {target}: {exc}", file=sys.stderr)
            return 2
    try:
        for target, what in outputs:
            check_output(target, overwrite=force, what=what)
        for target, _ in outputs[:1] + outputs[2:]:   # the take's lock covers its sidecar
            held.enter_context(output_lock(target))
    except DaHyFUserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    return 0


def run(args) -> int:
    out = Path(args.out)
    if args.preview and Path(args.preview).suffix.lower() != ".mp4":
        print(f"dahyf capture: error: --preview must be an .mp4 file, got {args.preview}", file=sys.stderr)
        return 2
    extra = ((Path(args.preview), "preview"),) if args.preview else ()
    with ExitStack() as held:
        code = claim_outputs("dahyf capture", held, out, args.force, extra)
        if code:
            return code
        return _capture(args, out)


def _capture(args, out: Path) -> int:
    """Capture, save and preview, with the outputs checked and locked by :func:`run`."""
    from tqdm import tqdm

    from .engine import load_engine
    from .focal import guess_spread

    bar = None
    written: list[Path] = []
    try:
        engine = load_engine(args.checkpoint, device=args.device, hand_model=args.mano)
        bar = tqdm(total=0, unit="frame", desc="capture", disable=args.quiet, dynamic_ncols=True)

        def progress(done: int, total: int) -> None:
            if total and bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

        take = engine.capture(args.video, hands=args.hands, frame_range=_frame_range(args.frames),
                              threshold=args.threshold, smooth=args.smooth, progress=progress,
                              focal=args.focal, lens_mm=args.lens, recover=args.recover,
                              self_calibrate=args.self_calibrate)
        bar.close()
        if take.meta.get("ended_early"):
            print(f"dahyf capture: warning: {Path(args.video).name} stopped decoding after {take.meta['frames_done']} "
                  "frames, before the frame count its container announces: the file may be truncated or damaged, "
                  "and the take covers only what could be decoded. Re-export the video if frames are missing.",
                  file=sys.stderr)
        path = take.save(out, overwrite=args.force)
        written.append(path)
        for t in take.tracks():
            print(f"track {t.index} ({t.handedness} hand): {len(t)} frames, {int(t.filled.sum())} held or filled")
        print(f"wrote {path} and {path.with_suffix('.json')}")
        spread = guess_spread(take.meta)
        if spread is not None:
            print(f"note: the hands' distance from the camera rests on a guessed focal length ({take.focal:.0f} px, "
                  f"±{100 * spread:.0f} %): the video does not say which lens filmed it. For true distances give "
                  "--lens MM (the camera's 35 mm-equivalent focal length) and capture again.")
        if args.preview:
            from .preview import write_preview

            pbar = tqdm(total=take.meta.get("frames_done", 0), unit="frame", desc="preview",
                        disable=args.quiet, dynamic_ncols=True)
            first = [None]

            def pprog(index: int) -> None:
                first[0] = index if first[0] is None else first[0]
                pbar.update(index - first[0] + 1 - pbar.n)

            write_preview(args.video, take, args.preview, engine.hand_models(take.handedness),
                          frame_range=_frame_range(args.frames), progress=pprog)
            pbar.close()
            print(f"wrote {args.preview}")
    except DaHyFUserError as exc:  # CaptureError, ModelFileError, CheckpointError …: messages meant for the user
        if bar is not None:
            bar.close()
        print(f"dahyf capture: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        if written:  # interrupted while writing the preview: the take itself is complete
            print(f"dahyf capture: interrupted; wrote {written[0]} but no preview.", file=sys.stderr)
        else:
            print("dahyf capture: interrupted; nothing was written.", file=sys.stderr)
        return 130
    return 0
