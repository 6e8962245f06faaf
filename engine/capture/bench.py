"""Capture benchmarks: throughput (decode, detection, engine, total; MediaPipe alone in the same
run), quality against the raw landmarks (presence, 2-D agreement, jitter, lag) and peak memory
against video length. Front: ``dahyf bench capture`` (dahyf.eval.bench).
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from ..fileio import atomic_write_text
from ..geometry import hand_size
from .errors import CaptureError
from .settings import DEFAULT_SMOOTH
from .tracking import HandDetector, HandTracker
from .video import Frame, VideoInfo, VideoReader


# --- sources ------------------------------------------------------------------------------------
def transcode(video, out, size: tuple[int, int] | None, max_frames: int | None) -> Path:
    """Write the first ``max_frames`` frames of ``video`` to ``out`` (mp4v), centre-cropped to the
    aspect of ``size`` and resized to it (W, H) px; None keeps the frames as they are."""
    reader = VideoReader(video, (0, max_frames) if max_frames else None)
    w0, h0 = reader.info.width, reader.info.height
    size = size or (w0, h0)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), reader.info.fps, size)
    # centre crop to the target aspect
    aspect = size[0] / size[1]
    cw, ch = (min(w0, round(h0 * aspect)), min(h0, round(w0 / aspect)))
    x0, y0 = (w0 - cw) // 2, (h0 - ch) // 2
    for f in reader:
        img = f.image[y0:y0 + ch, x0:x0 + cw]
        writer.write(cv2.resize(img, size, interpolation=cv2.INTER_AREA))
    writer.release()
    return Path(out)


class LoopedVideo:
    """A long video made by looping a real one: decoded for real, ``n_frames`` frames in all.

    Same interface as VideoReader (``info``, ``frames_total``, iteration, ``close``); frame
    indices and times keep increasing across loops.
    """

    def __init__(self, path, n_frames: int):
        self.path, self.n_frames = str(path), int(n_frames)
        first = VideoReader(self.path)
        i = first.info
        first.close()
        self.info = VideoInfo(i.path, i.width, i.height, i.fps, self.n_frames, i.rotation)
        self.frames_total = self.n_frames
        self.ended_early = False
        self._loop = 0   # frames per loop, once the first loop is done

    def __iter__(self):
        index = 0
        while index < self.n_frames:
            for f in VideoReader(self.path):
                if index >= self.n_frames:
                    return
                yield Frame(index, index / self.info.fps, f.image)
                index += 1
            self._loop = self._loop or index

    def frames_between(self, start: int, end: int):
        """Frames ``start`` .. ``end - 1`` decoded again (coverage recovery), each from its place in the loop."""
        loop = self._loop or self.info.frame_count
        index = start
        while index < min(end, self.n_frames):
            src = index % loop if loop else index
            n = min(end, self.n_frames) - index
            if loop:
                n = min(n, loop - src)
            got = 0
            for f in VideoReader(self.path).frames_between(src, src + n):
                yield Frame(index + got, (index + got) / self.info.fps, f.image)
                got += 1
            if got < n:
                return
            index += n

    def close(self):
        pass


# --- machine ------------------------------------------------------------------------------------
def machine_info() -> dict:
    import mediapipe

    try:   # the capture runtime does not need torch; report it when it is there
        import torch
        torch_info = {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                      "cuda": torch.cuda.is_available()}
    except ImportError:
        torch_info = {"torch": None, "cuda": False}
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "load_avg_1min": os.getloadavg()[0],
            "python": platform.python_version(), **torch_info, "mediapipe": mediapipe.__version__,
            "opencv": cv2.__version__, "numpy": np.__version__, "platform": platform.platform()}


# --- throughput -----------------------------------------------------------------------------------
def mediapipe_alone(video, frame_range=None) -> dict:
    """Decode + MediaPipe (same settings as the pipeline), timed; also counts hand frames."""
    reader = VideoReader(video, frame_range)
    det, tracker = HandDetector(), HandTracker()
    t_dec = t_det = 0.0
    n = hand_frames = 0
    per_side: dict[str, int] = {"right": 0, "left": 0}
    t_start = time.perf_counter()
    it = iter(reader)
    while True:
        t0 = time.perf_counter()
        f = next(it, None)
        t1 = time.perf_counter()
        if f is None:
            break
        found = tracker.update(f.index, det.detect(cv2.cvtColor(f.image, cv2.COLOR_BGR2RGB), 1000.0 * f.time_s))
        t2 = time.perf_counter()
        t_dec += t1 - t0
        t_det += t2 - t1
        n += 1
        hand_frames += bool(found)
        for s in found:
            per_side[s] += 1
    total = time.perf_counter() - t_start
    det.close()
    return {"frames": n, "decode_fps": n / t_dec, "detection_fps": n / t_det, "total_fps": n / total,
            "hand_frames": hand_frames, "hand_frames_per_side": per_side}


def engine_run(engine, video, frame_range=None, hands="both", smooth=DEFAULT_SMOOTH, recover: bool | None = None):
    """Full capture, timed by the pipeline; returns (figures, take). ``recover``: see Engine.stream
    (False: the single forward pass of the online mode; True: offline coverage recovery)."""
    from .take import Take

    t0 = time.perf_counter()
    chunks = list(engine.stream(video, hands=hands, frame_range=frame_range, smooth=smooth, recover=recover))
    total = time.perf_counter() - t0
    take = Take.from_chunks(chunks)
    tm = engine.last_timings
    n = max(tm["frames"], 1)
    return {"frames": tm["frames"], "decode_fps": n / max(tm["decode_s"], 1e-9),
            "detection_fps": n / max(tm["detect_s"], 1e-9), "engine_fps": n / max(tm["engine_s"], 1e-9),
            "engine_s": tm["engine_s"], "recover_s": tm.get("recover_s", 0.0), "focal_s": tm.get("focal_s", 0.0),
            "total_fps": n / total, "rows": len(take)}, take


# --- quality against the raw landmarks ----------------------------------------------------------
def _segments(frames: np.ndarray) -> list[slice]:
    """Runs of consecutive frame indices."""
    breaks = np.flatnonzero(np.diff(frames) != 1) + 1
    edges = [0, *breaks.tolist(), len(frames)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def jitter(frames: np.ndarray, points: np.ndarray, size: np.ndarray) -> float:
    """Mean norm of the second difference of (N, 21, 2) px points per hand size, over consecutive frames."""
    vals = []
    for s in _segments(frames):
        p, sz = points[s], size[s]
        if len(p) < 3:
            continue
        acc = np.linalg.norm(p[2:] - 2 * p[1:-1] + p[:-2], axis=-1).mean(-1)
        vals.append(acc / np.maximum(sz[1:-1], 1.0))
    return float(np.concatenate(vals).mean()) if vals else float("nan")


def lag_frames(frames: np.ndarray, ours: np.ndarray, ref: np.ndarray, max_lag: int = 5) -> int | None:
    """Lag of ``ours`` behind ``ref`` (frames, positive = late), by cross-correlating velocities.

    ours, ref : (N, 21, 2) px of one track; only consecutive frames are used.

    Returns None ("not measured") when no lag in ±``max_lag`` can be measured: too few consecutive
    frames (a lag needs two velocity pairs within one run), or hand centres that do not move in step
    at any lag (no positive correlation, e.g. a still hand).
    """
    scores = np.zeros(2 * max_lag + 1)
    measured = np.zeros(2 * max_lag + 1, bool)
    for s in _segments(frames):
        a = np.diff(ours[s].mean(1), axis=0)  # (n-1, 2) velocity of the hand centre
        b = np.diff(ref[s].mean(1), axis=0)
        n = len(a)
        for k, lag in enumerate(range(-max_lag, max_lag + 1)):
            if n - abs(lag) < 2:
                continue
            measured[k] = True
            if lag >= 0:
                scores[k] += float((a[lag:] * b[:n - lag]).sum())
            else:
                scores[k] += float((a[:n + lag] * b[-lag:]).sum())
    scores[~measured] = -np.inf
    best = int(np.argmax(scores))
    return best - max_lag if scores[best] > 0 else None


def _ratio_below(ours: float, raw: float) -> float | None:
    """``1 - ours / raw`` (how much lower ``ours`` is), or None when either is not measured (NaN)."""
    return float(1.0 - ours / raw) if np.isfinite(ours) and np.isfinite(raw) and raw > 0 else None


def landmark_map_of(engine) -> np.ndarray | None:
    """The engine's landmark map (21, 21: MediaPipe keypoints = map @ model keypoints) when its
    checkpoint carries one (``LandmarkConfig.landmark_map``), else None."""
    est = getattr(engine, "estimator", None)
    if not getattr(getattr(est, "config", None), "landmark_map", False):
        return None
    w = est.weights["landmark_map"]
    return np.asarray(w.detach().cpu() if hasattr(w, "detach") else w, np.float64)


def quality(take, mp_hand_frames: int, landmark_map: np.ndarray | None = None) -> dict:
    """Take vs the raw MediaPipe landmarks it holds (same run).

    Jitter reductions and lags that cannot be measured (too few consecutive frames) are None, per
    track and overall (``jitter_reduction``, ``max_abs_lag_frames``: over the tracks where they are).
    With ``landmark_map`` (:func:`landmark_map_of`) the distance is also given after mapping the
    captured hand's projected keypoints into MediaPipe's keypoint convention
    (``median_dist_mapped_per_hand_size``): how closely the capture follows the landmarks, without
    the convention's offset (MediaPipe's fingertips lie short of the model's).
    """
    out = {"take_hand_frames": int(len(np.unique(take.frame))), "mediapipe_hand_frames": int(mp_hand_frames)}
    dists, mapped, per_track = [], [], []
    for t in take.tracks():
        if len(t) < 3:
            continue
        size = hand_size(t.landmarks2d)
        d = np.linalg.norm(t.joints2d_proj - t.landmarks2d, axis=-1).mean(-1) / np.maximum(size, 1.0)
        dists.append(d)
        if landmark_map is not None:
            proj_mp = np.asarray(landmark_map, np.float64) @ np.asarray(t.joints2d_proj, np.float64)
            mapped.append(np.linalg.norm(proj_mp - t.landmarks2d, axis=-1).mean(-1) / np.maximum(size, 1.0))
        j_ours, j_raw = jitter(t.frame, t.joints2d_proj, size), jitter(t.frame, t.landmarks2d, size)
        per_track.append({"track": t.index, "handedness": t.handedness, "rows": len(t),
                          "filled": int(t.filled.sum()),
                          "median_dist_per_hand_size": float(np.median(d)),
                          **({"median_dist_mapped_per_hand_size": float(np.median(mapped[-1]))} if landmark_map is not None else {}),
                          "jitter_ours": j_ours if np.isfinite(j_ours) else None,
                          "jitter_raw": j_raw if np.isfinite(j_raw) else None,
                          "jitter_reduction": _ratio_below(j_ours, j_raw),
                          "lag_frames": lag_frames(t.frame, t.joints2d_proj, t.landmarks2d)})
    out["tracks"] = per_track
    if dists:
        out["median_dist_per_hand_size"] = float(np.median(np.concatenate(dists)))
        if mapped:
            out["median_dist_mapped_per_hand_size"] = float(np.median(np.concatenate(mapped)))
        jit = [(p["jitter_reduction"], p["rows"]) for p in per_track if p["jitter_reduction"] is not None]
        lags = [abs(p["lag_frames"]) for p in per_track if p["lag_frames"] is not None]
        out["jitter_reduction"] = float(np.average([j for j, _ in jit], weights=[r for _, r in jit])) if jit else None
        out["max_abs_lag_frames"] = int(max(lags)) if lags else None
    return out


# --- memory ---------------------------------------------------------------------------------------
def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def memory_run(video, seconds: float, checkpoint=None) -> dict:
    """Stream a ``seconds``-long looped copy of ``video`` through the engine in a fresh process."""
    code = ("import json,sys; from dahyf.capture.bench import _memory_child; "
            "print(json.dumps(_memory_child(sys.argv[1], float(sys.argv[2]), sys.argv[3] or None)))")
    res = subprocess.run([sys.executable, "-c", code, str(video), str(seconds), checkpoint or ""],
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"memory run failed: {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _memory_child(video, seconds: float, checkpoint=None) -> dict:
    from .engine import load_engine

    engine = load_engine(checkpoint, device="cpu")
    info = VideoReader(video).info
    source = LoopedVideo(video, int(round(seconds * info.fps)))
    rows = 0
    t0 = time.perf_counter()
    rss_after_warmup = None
    for chunk in engine.stream(source, hands="both"):
        rows += len(chunk)
        if rss_after_warmup is None and chunk.frames_done >= 300:
            rss_after_warmup = peak_rss_mb()
    return {"seconds": seconds, "frames": source.n_frames, "rows": rows, "wall_s": time.perf_counter() - t0,
            "peak_rss_mb": peak_rss_mb(), "peak_rss_after_300_frames_mb": rss_after_warmup}


# --- front ----------------------------------------------------------------------------------------
def _size(text: str | None):
    if not text:
        return None
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def add_video_arguments(p, hands: str, out: str) -> None:
    """The arguments every video benchmark takes: video, --json, --size, --frames, --hands,
    --checkpoint, --out."""
    p.add_argument("video", help="the video to benchmark")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--size", default="640x480", help="transcode to WxH first (centre crop); 'native' keeps it")
    p.add_argument("--frames", type=int, default=300, help="frames to use (default 300)")
    p.add_argument("--hands", default=hands, choices=("right", "left", "both"))
    p.add_argument("--checkpoint", help="engine checkpoint (default: the bundled engine)")
    p.add_argument("--out", default=out, help="where to write the results")


def bench_video(args, folder) -> Path:
    """The benchmark's copy of ``args.video`` in ``folder``: ``args.frames`` frames at ``args.size``."""
    size = None if args.size == "native" else _size(args.size)
    return transcode(args.video, Path(folder) / "bench.mp4", size, args.frames)


def write_result(result: dict, args) -> Path:
    """Write ``result`` as JSON to ``args.out`` (and print it with ``--json``); the path."""
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(result, indent=1))
    if args.json:
        print(json.dumps(result, indent=1))
    return out


def add_arguments(p) -> None:
    add_video_arguments(p, hands="both", out="benchmarks/capture.json")
    p.add_argument("--smooth", type=float, default=DEFAULT_SMOOTH)
    p.add_argument("--memory", metavar="MIN,MIN", help="also measure peak memory for looped videos of these "
                   "lengths in minutes, e.g. 1,10 (slow: runs the whole pipeline)")


def run(args) -> int:
    from .engine import load_engine

    try:
        engine = load_engine(args.checkpoint, device="cpu")
        with tempfile.TemporaryDirectory(prefix="dahyf-bench-") as tmp:
            src = bench_video(args, tmp)
            # MediaPipe alone before and after the engine (the CPU may be shared); the faster of the
            # two is the reference, which is the conservative choice for the slowdown figure.
            # MediaPipe alone, the online single pass, the offline capture (coverage recovery), MediaPipe
            # alone again: every ratio from one run
            mp_before = mediapipe_alone(src)
            ours, take = engine_run(engine, src, hands=args.hands, smooth=args.smooth, recover=False)
            offline, take_offline = engine_run(engine, src, hands=args.hands, smooth=args.smooth, recover=True)
            mp_after = mediapipe_alone(src)
            mp = max(mp_before, mp_after, key=lambda r: r["total_fps"])
            result = {"video": Path(args.video).name, "size": list(take.image_size), "frames": ours["frames"],
                      "mediapipe_alone": mp, "mediapipe_alone_runs_total_fps": [mp_before["total_fps"], mp_after["total_fps"]],
                      "engine": ours,
                      "slowdown_vs_mediapipe": 1.0 - ours["total_fps"] / mp["total_fps"],
                      "quality": quality(take, mp["hand_frames"], landmark_map_of(engine)),
                      "engine_offline": offline,
                      "offline_slowdown_vs_online": 1.0 - offline["total_fps"] / ours["total_fps"],
                      "offline_slowdown_vs_mediapipe": 1.0 - offline["total_fps"] / mp["total_fps"],
                      "quality_offline": quality(take_offline, mp["hand_frames"], landmark_map_of(engine)),
                      "offline_meta": {k: v for k, v in take_offline.meta.items()
                                       if k.startswith(("recover", "gap_", "continuity_", "focal_"))},
                      "machine": machine_info(), "date": time.strftime("%Y-%m-%d %H:%M:%S")}
            if args.memory:
                result["memory"] = [memory_run(src, float(m) * 60.0, args.checkpoint)
                                    for m in args.memory.split(",")]
    except CaptureError as exc:
        print(f"dahyf bench capture: error: {exc}", file=sys.stderr)
        return 1
    out = write_result(result, args)
    if not args.json:
        e, m = result["engine"], result["mediapipe_alone"]
        print(f"{result['video']} at {result['size'][0]}x{result['size'][1]}, {result['frames']} frames")
        print(f"engine: decode {e['decode_fps']:.0f} fps, detection {e['detection_fps']:.0f} fps, "
              f"engine {e['engine_fps']:.0f} fps, total {e['total_fps']:.1f} fps (online, single pass)")
        print(f"offline (coverage recovery): total {result['engine_offline']['total_fps']:.1f} fps, "
              f"{100 * result['offline_slowdown_vs_online']:.0f} % slower than the single pass")
        print(f"MediaPipe alone: decode {m['decode_fps']:.0f} fps, detection {m['detection_fps']:.0f} fps, "
              f"total {m['total_fps']:.1f} fps")
        q = result["quality"]
        if "median_dist_per_hand_size" in q:
            mapped = q.get("median_dist_mapped_per_hand_size")
            print(f"projection vs MediaPipe's landmarks: {100 * q['median_dist_per_hand_size']:.1f} % of the hand"
                  + (f" ({100 * mapped:.1f} % in MediaPipe's keypoint convention)" if mapped is not None else ""))
        print(f"wrote {out}")
    return 0
