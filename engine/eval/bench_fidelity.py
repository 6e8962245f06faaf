"""`dahyf bench fidelity`: does the captured 3-D hand look like the filmed one (issue 11)?

Three parts, each optional (``--parts``), all with the focal length unknown to the engine:

- ``freihand``: the annotated FreiHAND images (``../shared/media/freihand``; 2-D ground truth only):
  the lifter from the ground-truth 2-D joints, and end to end through MediaPipe — detection,
  2-D error, re-projection error of the lifted hand, and summed finger flexion.
- ``clips``: the rendered fidelity clips (``benchmarks/fidelity_clips``, exact 3-D ground truth):
  PA-MPJPE, root-relative MPJPE, absolute depth error, summed-flexion error on straight fingers,
  global-orientation error, coverage (and MediaPipe alone and the single forward pass beside it),
  ghost rows, wrong-side rows, flips.
- ``video``: a real video without ground truth (default ``../shared/media/videos/dynhamr_demo3.mp4``):
  summed flexion of fingers that are straight in the video, ghost rows, coverage against
  MediaPipe alone, flips, 2-D error and jitter against the raw landmarks.

Metric definitions: :mod:`dahyf.eval.fidelity`.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..geometry import hand_diagonal
from . import fidelity as F

REPO = Path(__file__).resolve().parent.parent.parent
SHARED_MEDIA = REPO.parent / "shared" / "media"
DEFAULT_VIDEO = SHARED_MEDIA / "videos" / "dynhamr_demo3.mp4"
DEFAULT_FREIHAND = SHARED_MEDIA / "freihand"
PARTS = ("freihand", "clips", "video")


def add_arguments(p) -> None:
    from ..sample_video.clips import CLIPS_DIR

    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)}")
    p.add_argument("--clips", type=Path, default=CLIPS_DIR, help="folder of the rendered clips (default: %(default)s)")
    p.add_argument("--only", default=None, help="only these clips (comma-separated names)")
    p.add_argument("--video", type=Path, default=DEFAULT_VIDEO, help="real video without ground truth")
    p.add_argument("--frames", default=None, help="frame range of the real video, e.g. 0:200")
    p.add_argument("--freihand", type=Path, default=DEFAULT_FREIHAND, help="folder with test_freihand.json")
    p.add_argument("--checkpoint", default=None, help="engine checkpoint (default: the bundled one)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--out", default="benchmarks/fidelity.json", help="where to write the figures (default: %(default)s)")


# --- FreiHAND images ------------------------------------------------------------------------------
def bench_freihand(engine, folder: Path) -> dict:
    """Lifter from the GT 2-D joints and end to end through MediaPipe on the FreiHAND images."""
    from ..backend import to_numpy
    from ..net.batch import HandBatch
    from .freihand_images import IMAGE_SIZE, load_freihand, run_mediapipe

    samples = load_freihand(folder)
    gt2d = np.stack([kp for _, kp in samples])
    size = hand_diagonal(gt2d)

    def lift(lm: np.ndarray) -> dict:
        out = engine.estimator.predict(HandBatch.of(lm, True, IMAGE_SIZE))
        return {k: to_numpy(v) for k, v in out.items()}

    def scored(pred: dict, lm: np.ndarray, idx) -> dict:
        reproj = np.linalg.norm(pred["joints2d_proj"] - gt2d[idx], axis=-1).mean(-1) / size[idx]
        flex = F.summed_flexion(pred["pose"])
        return {"images": int(len(idx)), "reprojection_vs_gt2d_per_hand_size": F._mean(reproj),
                "summed_flexion_deg_per_finger": dict(zip(F.FINGERS, np.round(flex.mean(0), 1).tolist())),
                "confidence_median": F._median(pred["confidence"])}

    out = {"note": "2-D ground truth only (no 3-D joints in shared/media/freihand): PA-MPJPE cannot be measured here",
           "pa_mpjpe_mm": None}
    out["from_gt_2d"] = scored(lift(gt2d), gt2d, np.arange(len(gt2d)))
    mp = run_mediapipe([p for p, _ in samples])
    found = [i for i, m in enumerate(mp) if m is not None]
    e2e = {"detected": f"{len(found)}/{len(samples)}"}
    if found:
        lm = np.stack([mp[i] for i in found])
        e2e["mediapipe_err_per_hand_size"] = F._mean(np.linalg.norm(lm - gt2d[found], axis=-1).mean(-1) / size[found])
        e2e.update(scored(lift(lm), lm, np.array(found)))
    out["end_to_end"] = e2e
    return out


# --- rendered clips -------------------------------------------------------------------------------
def mediapipe_detections(video: Path, frame_range=None) -> list[list[np.ndarray]]:
    """MediaPipe alone (the pipeline's detector settings): per frame, the (21, 2) px landmark sets."""
    import cv2

    from ..capture.tracking import HandDetector
    from ..capture.video import VideoReader

    out = []
    with HandDetector() as det:
        for f in VideoReader(video, frame_range):
            out.append([d.landmarks for d in det.detect(cv2.cvtColor(f.image, cv2.COLOR_BGR2RGB))])
    return out


def score_clip(take, gt: dict, detections: list[list[np.ndarray]]) -> dict:
    """Fidelity figures of one capture of a rendered clip (see the module docstring).

    Rows are matched to the true hands by their landmarks, filled rows (interpolated or held: no
    landmarks of their own) by the captured hand's projection. ``coverage`` counts every matched
    row, ``coverage_detected`` only rows with a detection of their own; the 3-D figures are over
    the detected rows (``pa_mpjpe_mm_filled``: over the filled ones).
    """
    from ..sample_video.script import rodrigues

    sides = [str(s) for s in gt["sides"]]
    vis = np.asarray(gt["visible"], bool)                                # (H, T)
    frame = np.asarray(take.frame, np.int64)
    filled = np.asarray(take.filled, bool)
    where = np.where(filled[:, None, None], np.asarray(take.joints2d_proj), np.asarray(take.landmarks2d))
    hand = F.match_rows(frame, where, gt["joints2d"])
    track_side = np.array([take.handedness[int(t)] for t in take.track]) if len(take) else np.zeros(0, str)
    covered = np.zeros_like(vis)
    detected = np.zeros_like(vis)
    ghosts = 0
    for h in range(len(sides)):
        rows_h = frame[hand == h]
        f_u, counts = np.unique(rows_h, return_counts=True)
        covered[h, f_u] = True
        detected[h, frame[(hand == h) & ~filled]] = True
        ghosts += int((counts - 1).sum())
    mp_cov = np.zeros_like(vis)
    for f, dets in enumerate(detections[: vis.shape[1]]):
        if dets:
            m = F.match_rows(np.full(len(dets), f), np.stack(dets), gt["joints2d"])
            mp_cov[m[m >= 0], f] = True
    wrong = (hand >= 0) & (track_side != np.array([sides[h] if h >= 0 else "" for h in hand]))
    right_hand = (hand >= 0) & ~wrong
    ok = right_hand & ~filled
    okf = right_hand & filled
    pa_filled = F.pa_mpjpe_mm(np.asarray(take.joints3d, np.float64)[okf], gt["joints3d"][hand[okf], frame[okf]].astype(np.float64))
    g3 = gt["joints3d"][hand[ok], frame[ok]].astype(np.float64)
    p3 = np.asarray(take.joints3d, np.float64)[ok]
    gpose = gt["pose"][hand[ok], frame[ok]].astype(np.float64)
    ppose = np.asarray(take.pose, np.float64)[ok]
    R, Rg = rodrigues(ppose[:, 0]), rodrigues(gpose[:, 0])
    orient = np.degrees(np.arccos(np.clip((np.trace(np.swapaxes(R, -1, -2) @ Rg, axis1=-2, axis2=-1) - 1) / 2, -1, 1)))
    flips = 0
    for t in np.unique(take.track[ok]) if ok.any() else []:
        sel = np.asarray(take.track)[ok] == t
        order = np.argsort(frame[ok][sel])
        flips += F.count_flips(frame[ok][sel][order], R[sel][order], Rg[sel][order])
    flex_err = F.flexion_error_on_straight(ppose, gpose)
    return {
        "frames": int(vis.shape[1]), "hands": sides, "visible_hand_frames": int(vis.sum()),
        "coverage": float(covered[vis].mean()) if vis.any() else float("nan"),
        "coverage_detected": float(detected[vis].mean()) if vis.any() else float("nan"),
        "coverage_mediapipe_alone": float(mp_cov[vis].mean()) if vis.any() else float("nan"),
        "rows": int(len(frame)), "filled_rows": int(filled.sum()),
        "pa_mpjpe_mm_filled": F._mean(pa_filled),
        "ghost_rows": ghosts, "unmatched_rows": int((hand < 0).sum()), "wrong_side_rows": int(wrong.sum()),
        "pa_mpjpe_mm": F._mean(F.pa_mpjpe_mm(p3, g3)), "rr_mpjpe_mm": F._mean(F.rr_mpjpe_mm(p3, g3)),
        "depth_err_median": F._median(F.depth_error(p3, g3)),
        "straight_flexion_err_deg_median": F._median(flex_err), "straight_fingers": int(flex_err.size),
        "orient_err_deg_median": F._median(orient), "flips": flips,
        "focal_used": float(take.focal), "focal_true": float(gt["focal"]),
        "_n3d": int(ok.sum()), "_pa": F.pa_mpjpe_mm(p3, g3).tolist(), "_rr": F.rr_mpjpe_mm(p3, g3).tolist(),
        "_depth": F.depth_error(p3, g3).tolist(), "_flex": flex_err.tolist(),
        "_cov": [int(covered[vis].sum()), int(mp_cov[vis].sum()), int(vis.sum()), int(detected[vis].sum())],
    }


def pooled(per_clip: dict) -> dict:
    """Figures over all clips' rows / fingers / frames together."""
    cat = lambda k: np.concatenate([np.asarray(c[k], float) for c in per_clip.values()] or [np.zeros(0)])  # noqa: E731
    cov = np.sum([c["_cov"] for c in per_clip.values()], axis=0) if per_clip else np.zeros(3)
    return {"pa_mpjpe_mm": F._mean(cat("_pa")), "rr_mpjpe_mm": F._mean(cat("_rr")),
            "depth_err_median": F._median(cat("_depth")), "straight_flexion_err_deg_median": F._median(cat("_flex")),
            "coverage": float(cov[0] / max(cov[2], 1)), "coverage_mediapipe_alone": float(cov[1] / max(cov[2], 1)),
            "coverage_detected": float(cov[3] / max(cov[2], 1)),
            "coverage_single_pass": float(sum(c.get("_cov_single", 0) for c in per_clip.values()) / max(cov[2], 1)),
            "filled_rows": int(sum(c["filled_rows"] for c in per_clip.values())),
            "ghost_rows": int(sum(c["ghost_rows"] for c in per_clip.values())),
            "wrong_side_rows": int(sum(c["wrong_side_rows"] for c in per_clip.values())),
            "flips": int(sum(c["flips"] for c in per_clip.values()))}


def bench_clips(engine, folder: Path, only: list[str] | None = None) -> dict:
    from ..sample_video.clips import clip_paths, load_clip_gt

    per_clip = {}
    for video, gt_path in clip_paths(folder):
        name = video.stem
        if only and name not in only:
            continue
        gt = load_clip_gt(gt_path)
        detections = mediapipe_detections(video)
        t0 = time.perf_counter()
        take = engine.capture(str(video), hands="both")          # offline: coverage recovery on
        per_clip[name] = score_clip(take, gt, detections)
        per_clip[name]["capture_fps"] = float(per_clip[name]["frames"] / (time.perf_counter() - t0))
        per_clip[name]["recovery"] = {k: v for k, v in take.meta.items()
                                      if k.startswith(("recover", "gap_", "continuity_", "end_", "focal_"))}
        single = score_clip(engine.capture(str(video), hands="both", recover=False), gt, detections)
        per_clip[name].update({f"{k}_single_pass": single[k] for k in
                               ("coverage", "ghost_rows", "wrong_side_rows", "pa_mpjpe_mm", "flips", "rows")})
        per_clip[name]["_cov_single"] = single["_cov"][0]
    if not per_clip:
        return {"note": f"no rendered clips in {folder}: `python -m dahyf.sample_video --clips {folder}`"}
    out = {"pooled": pooled(per_clip)}
    out["per_clip"] = {k: {m: v for m, v in c.items() if not m.startswith("_")} for k, c in per_clip.items()}
    return out


# --- real video -----------------------------------------------------------------------------------
def bench_video(engine, video: Path, frame_range=None) -> dict:
    """Fidelity on a real video without ground truth."""
    from ..capture.bench import mediapipe_alone, quality
    from ..sample_video.script import rodrigues

    t0 = time.perf_counter()
    take = engine.capture(str(video), hands="both", frame_range=frame_range)      # offline: recovery on
    capture_s = time.perf_counter() - t0
    single = engine.capture(str(video), hands="both", frame_range=frame_range, recover=False)
    mp = mediapipe_alone(str(video), frame_range)
    q = quality(take, mp["hand_frames"])
    flex, per_finger, flips, depth = [], {f: [] for f in F.FINGERS}, 0, {}
    for t in take.tracks():
        straight = F.straight_by_projection(t.landmarks2d)
        sf = F.summed_flexion(t.pose)
        for k, f in enumerate(F.FINGERS):
            per_finger[f] += sf[straight[:, k], k].tolist()
        flex += sf[:, 1:][straight[:, 1:]].tolist()     # the four long fingers
        flips += F.count_flips(t.frame, rodrigues(np.asarray(t.pose[:, 0], np.float64)))
        depth[t.handedness] = F._median(t.joints3d[:, 0, 2])
    return {
        "video": video.name, "frames": int(take.meta.get("frames_done", 0)),
        "straight_flexion_deg_median": F._median(flex), "straight_fingers": len(flex),
        "straight_flexion_deg_median_per_finger": {f: F._median(v) for f, v in per_finger.items()},
        "ghost_rows": F.coincident_rows(np.asarray(take.frame), np.asarray(take.landmarks2d)),
        "hand_frames": q["take_hand_frames"], "hand_frames_mediapipe_alone": q["mediapipe_hand_frames"],
        "flips": flips, "wrist_depth_m_median": depth, "focal_used": float(take.focal),
        "tracks": q["tracks"], "capture_fps": float(take.meta.get("frames_done", 0) / capture_s),
        "rows": int(len(take)), "filled_rows": int(np.asarray(take.filled).sum()),
        "single_pass": {"rows": int(len(single)), "hand_frames": int(len(np.unique(single.frame))),
                        "ghost_rows": F.coincident_rows(np.asarray(single.frame), np.asarray(single.landmarks2d)),
                        "flips": int(sum(F.count_flips(t.frame, rodrigues(np.asarray(t.pose[:, 0], np.float64)))
                                         for t in single.tracks())),
                        "rows_per_track": {t.handedness: len(t) for t in single.tracks()}},
        "rows_per_track": {t.handedness: len(t) for t in take.tracks()},
        "recovery": {k: v for k, v in take.meta.items() if k.startswith(("recover", "gap_", "continuity_", "end_", "focal_"))},
    }


def run(args) -> int:
    import dahyf

    from ..capture.bench import machine_info, write_result

    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    if bad:
        print(f"unknown part(s) {bad}: choose from {', '.join(PARTS)}")
        return 2
    engine = dahyf.load_engine(args.checkpoint, device="cpu")
    result = {"machine": machine_info(), "engine": engine.name}
    if "freihand" in parts:
        if (args.freihand / "test_freihand.json").is_file():
            result["freihand"] = bench_freihand(engine, args.freihand)
        else:
            result["freihand"] = {"note": f"{args.freihand} not found: skipped"}
    if "clips" in parts:
        result["clips"] = bench_clips(engine, args.clips, args.only.split(",") if args.only else None)
    if "video" in parts:
        if args.video.is_file():
            fr = None
            if args.frames:
                a, _, b = args.frames.partition(":")
                fr = (int(a or 0), int(b) if b else None)
            result["video"] = bench_video(engine, args.video, fr)
        else:
            result["video"] = {"note": f"{args.video} not found: skipped"}
    print(f"wrote {write_result(result, args)}")
    return 0
