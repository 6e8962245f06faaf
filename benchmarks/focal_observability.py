"""Can the hands tell a video's focal length? The self-calibration's estimator
(:func:`dahyf.capture.focal.pnp_residual_curve` + :func:`~dahyf.capture.focal.pooled_minimum` on the
grid :func:`~dahyf.capture.focal.search_log_focals`, the largest :data:`~dahyf.capture.focal.MAX_DETECTIONS`
detections) run on each rendered fidelity clip with 3-D shapes and 2-D points of known quality:

(a) exact 3-D joints + exact 2-D joints (sanity: ratio ≈ 1);
(b) as (a) with the 5 fingertips moved ``TIP_SHIFT`` of the last bone along it (keypoint convention);
(c) as (a) with ``NOISE_PX`` Gaussian noise on the 2-D joints (fixed seed);
(d) exact 3-D mapped into MediaPipe's convention (the checkpoint's landmark map) + MediaPipe's
    landmarks: the bound for any 3-D shape source against MediaPipe;
(e) the captured 3-D joints, mapped the same way, + MediaPipe's landmarks: what the engine could use;
(f) the engine's own self-calibration (MediaPipe world landmarks; opt-in: ``self_calibrate=True``) as
    the capture reports it.

Figures are estimated / true focal. For (d) the clips are captured again with that focal and the pooled
median depth error is reported (as ``dahyf bench fidelity`` pools it), beside the default focal's.

Run: ``.venv/bin/python benchmarks/focal_observability.py [--out benchmarks/focal_observability.json]``
(about a minute on 2 CPUs: the clips are short).
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
from pathlib import Path

import numpy as np

import dahyf
from dahyf.capture.bench import landmark_map_of
from dahyf.capture.focal import MAX_DETECTIONS, MIN_DETECTIONS, pnp_residual_curve, pooled_minimum, search_log_focals
from dahyf.eval import fidelity as F
from dahyf.eval.bench_fidelity import DEFAULT_VIDEO, score_clip
from dahyf.geometry import hand_size
from dahyf.hand.tables import KEYPOINT_PARENTS, NUM_KEYPOINTS
from dahyf.sample_video.clips import clip_paths, load_clip_gt

#: Keypoints without children: the 5 fingertips (thumb → pinky).
TIPS = tuple(k for k in range(NUM_KEYPOINTS) if k not in KEYPOINT_PARENTS)
#: Case (b)'s fingertip shift along DIP → tip, in last-bone lengths (MediaPipe's tips fall 0.23–0.78
#: bone lengths short of the model's, benchmarks/landmark_tip_offset.py).
TIP_SHIFT = -0.25
#: Case (c)'s 2-D noise, px (one standard deviation per coordinate), and its seed.
NOISE_PX, SEED = 1.5, 0
CASES = ("a_exact", "b_tips_shifted", "c_noise", "d_exact3d_mediapipe2d", "e_captured3d_mediapipe2d", "f_engine")


def tips_moved(uv: np.ndarray, shift: float) -> np.ndarray:
    """(N, 21, 2) px keypoints with each fingertip moved ``shift`` × its last bone (DIP → tip) along it."""
    out = np.array(uv, np.float64)
    tips = list(TIPS)
    out[:, tips] += shift * (out[:, tips] - out[:, [KEYPOINT_PARENTS[t] for t in tips]])
    return out


def focal_fit(uv: np.ndarray, shape3d: np.ndarray, image_size) -> dict:
    """The self-calibration's estimate from (N, 21, 2) px points and (N, 21, 3) m shapes: focal px,
    whether its minimum lies at an end of the searched range, and the frames that could be posed."""
    log_f = search_log_focals(image_size)
    res = pnp_residual_curve(uv, shape3d, image_size, np.exp(log_f))
    ok = np.isfinite(res).all(1) & (res.min(1) > 0)
    if ok.sum() < MIN_DETECTIONS:
        return {"focal_px": None, "at_edge": None, "frames": int(ok.sum())}
    i, lf, _ = pooled_minimum(res[ok], log_f)
    return {"focal_px": math.exp(lf), "at_edge": not 0 < i < len(log_f) - 1, "frames": int(ok.sum())}


def clip_cases(engine, video: Path, gt: dict, M: np.ndarray, rng) -> tuple[dict, object]:
    """Cases (a)–(f) of one clip (ratios to the true focal) and its capture with the focal unknown."""
    take = engine.capture(str(video), hands="both", self_calibrate=True)
    frame, lm_all = np.asarray(take.frame), np.asarray(take.landmarks2d, np.float64)
    hand = F.match_rows(frame, lm_all, gt["joints2d"])
    ok = np.nonzero((hand >= 0) & ~np.asarray(take.filled, bool))[0]
    if len(ok) > MAX_DETECTIONS:   # the self-calibration's rule: the largest hands
        ok = np.sort(ok[np.argsort(-hand_size(lm_all[ok]), kind="stable")[:MAX_DETECTIONS]])
    lm, h, t = lm_all[ok], hand[ok], frame[ok]
    g3, g2 = gt["joints3d"][h, t].astype(np.float64), gt["joints2d"][h, t].astype(np.float64)
    to_mp = lambda X: np.einsum("ij,njk->nik", M, X)   # noqa: E731  MediaPipe keypoints = M @ model's
    size, true_f = tuple(int(v) for v in gt["image_size"]), float(gt["focal"])
    fits = {"a_exact": focal_fit(g2, g3, size),
            "b_tips_shifted": focal_fit(tips_moved(g2, TIP_SHIFT), g3, size),
            "c_noise": focal_fit(g2 + rng.normal(0, NOISE_PX, g2.shape), g3, size),
            "d_exact3d_mediapipe2d": focal_fit(lm, to_mp(g3), size),
            "e_captured3d_mediapipe2d": focal_fit(lm, to_mp(np.asarray(take.joints3d, np.float64)[ok]), size)}
    detail = take.meta.get("focal_detail", {})
    fits["f_engine"] = {"focal_px": detail.get("fit_focal_px"), "source": take.meta.get("focal_source"),
                        "rel_sigma": detail.get("rel_sigma", detail.get("bootstrap_rel_sigma"))}
    for r in fits.values():
        r["ratio"] = None if r["focal_px"] is None else round(r["focal_px"] / true_f, 4)
    return {"true_focal_px": true_f, "used_focal_ratio": round(float(take.focal) / true_f, 4),
            "rows": int(len(ok)), "cases": fits}, take


def summary(per_clip: dict) -> dict:
    """Median |ratio − 1| over the clips and the share within 10 %, per case (clips without a figure left out)."""
    out = {}
    for c in CASES + ("used",):
        r = np.array([p["used_focal_ratio"] if c == "used" else p["cases"][c]["ratio"] for p in per_clip.values()])
        r = r[[x is not None for x in r]].astype(np.float64)
        out[c] = {"median_abs_err": round(float(np.median(abs(r - 1))), 4) if len(r) else None,
                  "within_10pct": round(float(np.mean(abs(r - 1) <= 0.1)), 3) if len(r) else None, "clips": int(len(r))}
    return out


def video_windows(engine, video: Path, window: int = 90, step: int = 45) -> list[dict]:
    """The engine's self-calibration on windows of ``window`` frames every ``step`` frames of one real
    video (one camera, one focal): what it fits and whether it accepts, per window."""
    from dahyf.capture.video import VideoReader

    with VideoReader(video) as reader:
        total = int(reader.frames_total or 0)
    out = []
    for start in range(0, max(total - step, 1), step):
        take = engine.capture(str(video), hands="both", frame_range=(start, min(start + window, total)),
                              self_calibrate=True)
        d = take.meta.get("focal_detail", {})
        out.append({"frames": [start, min(start + window, total)], "source": take.meta["focal_source"],
                    "focal_px": round(float(take.focal), 1), "fit_focal_px": d.get("fit_focal_px"),
                    "rel_sigma": d.get("rel_sigma", d.get("bootstrap_rel_sigma"))})
        print(f"  frames {start:4d}-{out[-1]['frames'][1]:4d}: fit {out[-1]['fit_focal_px']} px, "
              f"spread {out[-1]['rel_sigma']}, {out[-1]['source']} -> {out[-1]['focal_px']:.0f} px", flush=True)
    return out


def machine() -> dict:
    """The machine this ran on: CPU model, CPU count, load average, date (UTC)."""
    cpu = platform.processor()
    if Path("/proc/cpuinfo").is_file():
        cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                    if ln.startswith("model name")), cpu)
    return {"cpu": cpu, "cpus": os.cpu_count(), "loadavg": [round(x, 2) for x in os.getloadavg()],
            "platform": platform.platform(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="write the figures here as JSON")
    ap.add_argument("--video", type=Path, default=DEFAULT_VIDEO,
                    help="a real video whose windows the self-calibration is run on (default: the team's test "
                         "video, skipped when absent)")
    args = ap.parse_args(argv)
    engine, rng = dahyf.load_engine(), np.random.default_rng(SEED)
    M = landmark_map_of(engine)
    M = np.eye(NUM_KEYPOINTS) if M is None else M
    per_clip, depth_default, depth_d = {}, [], []
    print(f"{'clip':15s} {'f px':>5s} " + " ".join(f"{c[0]:>6s}" for c in CASES) + "  source    used")
    for video, gt_path in clip_paths():
        gt = load_clip_gt(gt_path)
        r, take = clip_cases(engine, video, gt, M, rng)
        per_clip[video.stem] = r
        depth_default += score_clip(take, gt, detections=[])["_depth"]
        d = r["cases"]["d_exact3d_mediapipe2d"]["focal_px"]
        if d is not None:
            depth_d += score_clip(engine.capture(str(video), hands="both", focal=d), gt, detections=[])["_depth"]
        fmt = lambda x: f"{x:6.2f}" if x is not None else "     -"   # noqa: E731
        print(f"{video.stem:15s} {r['true_focal_px']:5.0f} " + " ".join(fmt(r["cases"][c]["ratio"]) for c in CASES)
              + f"  {r['cases']['f_engine']['source']:9s} {r['used_focal_ratio']:.2f}", flush=True)
    s = summary(per_clip)
    depth = {"default_focal": round(float(np.median(depth_default)), 4), "d_focal": round(float(np.median(depth_d)), 4)}
    print("median |ratio-1|: " + " ".join(f"{c[0]} {100 * v['median_abs_err']:.1f} %" for c, v in s.items()
                                          if v["median_abs_err"] is not None))
    print("within 10 %:      " + " ".join(f"{c[0]} {v['within_10pct']:.2f}" for c, v in s.items()
                                          if v["within_10pct"] is not None))
    print(f"pooled median depth error: default focal {100 * depth['default_focal']:.1f} %, "
          f"case (d)'s focal {100 * depth['d_focal']:.1f} %")
    result = {"machine": machine(), "tip_shift": TIP_SHIFT, "noise_px": NOISE_PX, "seed": SEED,
              "max_detections": MAX_DETECTIONS, "summary": s, "depth_err_median": depth, "clips": per_clip}
    if args.video is not None and args.video.is_file():
        print(f"the self-calibration on windows of {args.video.name} (one camera):")
        result["video_windows"] = {"video": args.video.name, "windows": video_windows(engine, args.video)}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
