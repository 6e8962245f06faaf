"""Live capture in Blender: a camera drives the hand rigs through a timer; Record keys new Actions.

The engine (``dahyf`` LiveCapture: the source and the estimator) runs on threads of its own and is
started on another one, so neither loading it nor opening a camera blocks the UI. The timer
(:meth:`LiveSession.tick`, main thread) only copies the newest pose onto the rig's pose bones
(16 quaternions and a location per hand: well under a millisecond). *Record* makes the engine
collect rows; when the recording stops (or the source fails) they become a ``dahyf.Take`` and are
keyed in bulk (:class:`.keying.TrackKeyer`) into a new Action per hand, at scene time from the
frame where the recording started. An armature of the artist's (a character) can follow, through
the retargeter: its live-preview constraints, or (mirrored pairs) its solve on a worker thread.
"""
from __future__ import annotations

import os
import threading
import time
import traceback
from collections import deque

import bpy
import numpy as np

from dahyf.capture.settings import capture_sides

from . import engine_api, keying, live_drive, rig
from .capture_job import prefs_snapshot
from .prefs import get_prefs

#: Seconds between two timer ticks (a 30 frames/s camera gives a new pose every ~33 ms).
TICK_S = 0.01
#: Seconds between two redraws of the sidebar's status line.
STATUS_EVERY_S = 0.5
#: Name of the live rig of each side.
RIG_NAMES = {"right": "DaHyF Live R", "left": "DaHyF Live L"}
#: Stem of recorded takes' Actions: ``live.takeNNN.<side><track>``.
TAKE_STEM = "live"

#: (checkpoint, device, hand model) -> loaded engine, so that a second Start is quick.
_ENGINES: dict = {}


def _engine(prefs):
    key = ((getattr(prefs, "checkpoint", "") or "").strip(), engine_api.engine_device(prefs),
           engine_api.hand_model_source(prefs))
    if key not in _ENGINES:
        _ENGINES.clear()
        _ENGINES[key] = engine_api.load_engine(prefs)
    return _ENGINES[key]


def _live_rig(context, side: str, prefs):
    """The live rig of ``side``: the existing one, or a new rig of the mean hand shape."""
    name = RIG_NAMES[side]
    obj = bpy.data.objects.get(name)
    if obj is not None and obj.type == "ARMATURE" and obj.get(rig.SIDE_PROP) == side:
        return obj, False
    arm, _mesh = rig.build_hand_rig(context, engine_api.load_hand(prefs, side), side, name=name)
    return arm, True


class LiveSession:
    """One live session in one scene (main thread only; see the module docstring).

    Parameters
    ----------
    context : bpy.types.Context of the Start operator.
    source : camera index ('0'), device path, URL or video file.
    hands : 'right' | 'left' | 'both'; mirror, smoothing, threshold : as LiveCapture.
    key_location : key (and show) the wrist translation.
    take_path : where recorded takes are saved ('' : next to the saved .blend, else nowhere);
        an existing file is never overwritten: later takes get .002, .003 ...
    drive : an armature whose hands follow the live rigs through the retargeter (None: only the
        live rigs); each live hand drives the target hand the retarget matching picks for it.
    drive_preset : its retarget preset ('AUTO').
    lens_mm : the camera's lens as its 35 mm-equivalent focal length, mm (None: sqrt(W^2 + H^2) px).
    """

    def __init__(self, context, source: str, hands: str = "right", mirror: bool = False, smoothing: float = 0.5,
                 threshold: float = 0.85, key_location: bool = True, take_path: str = "", drive=None,
                 drive_preset: str = "AUTO", lens_mm: float | None = None):
        self.prefs = prefs_snapshot(get_prefs(context))
        source = (source or "").strip()
        if not source:
            raise engine_api.UserError("No live source: give a camera number (0 is the first camera), a device "
                                       "path, a stream URL or a video file.")
        self.source = bpy.path.abspath(source) if source.startswith("//") else source
        self.sides = capture_sides(hands)
        self.options = dict(hands=hands, mirror=mirror, smooth=smoothing, threshold=threshold, lens_mm=lens_mm)
        self.key_location, self.take_path = key_location, take_path
        self.scene_name = context.scene.name
        self.rig_names: list[str] = []
        self._new_rigs: list = []
        for side in self.sides:
            arm, new = _live_rig(context, side, self.prefs)
            self.rig_names.append(arm.name)
            if new:
                self._new_rigs.append(arm)
        self.bone_rest = [rig.bone_rest_quaternions(bpy.data.objects[n]) for n in self.rig_names]
        self._prev_q: list = [None] * len(self.sides)
        self.drive_notes: list[str] = []
        self.constrained: str | None = None   # the armature driven by live-preview constraints
        try:
            if drive is not None:
                self.plans, self.constrained, self.drive_notes = live_drive.drive(
                    context, self.rig_names, drive, drive_preset)
            else:
                self.plans = {}
        except BaseException:
            self._undrive()
            self._remove_new_rigs()
            raise
        self.live = None
        self.state = "starting"   # starting | live | stopped | failed
        self.message = "starting the engine and the source…"
        self.takes: list = []     # (Take, [Action names]) per recording
        self.saved: list = []     # (Take, path) per take written
        self.save_errors: list[str] = []
        self._saves: list[threading.Thread] = []
        self._paths: list[str] = []   # take files planned (some may still be being written)
        self.tick_s: deque = deque(maxlen=100_000)
        self._start_error: BaseException | None = None
        self._cancel = threading.Event()   # Stop pressed while starting
        self._record_frame: int | None = None
        self._last_index = -1
        self._last_status = 0.0
        self._starter = threading.Thread(target=self._start_engine, name="dahyf-live-start", daemon=True)
        self._starter.start()

    # --- starting -----------------------------------------------------------------------------------
    def _start_engine(self) -> None:
        """(starter thread) Load the engine, open the source, start the LiveCapture; no bpy here."""
        try:
            live = _engine(self.prefs).live(self.source, **self.options).start()
            if self._cancel.is_set():
                live.stop()
                raise engine_api.UserError("Live capture stopped before it started.")
            self.live = live
        except BaseException as exc:  # reported by the next tick
            if not isinstance(exc, engine_api.DaHyFUserError):
                traceback.print_exc()
            self._start_error = exc

    def wait_started(self, timeout: float = 60.0) -> None:
        """Block until the engine runs (scripts and tests; the UI never calls it)."""
        self._starter.join(timeout)
        self.tick()

    # --- the timer --------------------------------------------------------------------------------------
    def tick(self) -> float | None:
        """The timer callback: apply the newest pose; end the session when the source has ended or
        failed. Returns the next interval, or None once the session is over (timer removed)."""
        t0 = time.perf_counter()
        try:
            return self._tick()
        except Exception as exc:  # never let a timer raise: Blender would drop it silently
            traceback.print_exc()
            self._fail(f"Live capture failed ({type(exc).__name__}: {exc}).")
            return None
        finally:
            self.tick_s.append(time.perf_counter() - t0)

    def _tick(self) -> float | None:
        if self.state == "starting":
            if self._start_error is not None:
                self._fail(str(self._start_error), report=not self._cancel.is_set())
                return None
            if self.live is None:
                return TICK_S
            self.state, self.message = "live", f"live from {self.live.source.name}"
        if self.state != "live":
            return None
        for driver in self.plans.values():   # a target pose solved since the last tick
            driver.poll()
        pose = self.live.latest()
        if pose is not None and pose.index != self._last_index:
            self._last_index = pose.index
            self._apply(pose)
        if not self.live.running:   # the source ended or failed: keep what was recorded
            self._end(self.live.error)
            return None
        now = time.perf_counter()
        if now - self._last_status >= STATUS_EVERY_S:
            self._last_status = now
            self._status(pose)
        return TICK_S

    def _apply(self, pose) -> None:
        """Put the pose of each track seen in ``pose`` (a LivePose) on its live rig."""
        from dahyf.hand.tables import BONE_NAMES

        for t in range(len(self.sides)):
            row = pose.track(t)
            arm = bpy.data.objects.get(self.rig_names[t])
            if row is None or arm is None:
                continue
            q = keying.local_quaternions(row["pose"][None], self.bone_rest[t], self._prev_q[t])[0]
            self._prev_q[t] = q
            bones = arm.pose.bones
            for name, qb in zip(BONE_NAMES, q):
                bones[name].rotation_quaternion = qb
            if self.key_location:
                bones[BONE_NAMES[0]].location = keying.local_locations(row["transl"][None], self.bone_rest[t][0])[0]
            arm[keying.CONFIDENCE_PROP] = float(row["confidence"])
            if t in self.plans:
                self.plans[t].pose_changed()

    def _status(self, pose) -> None:
        s = self.live.stats()
        lat = s["latency_ms"]["p50"]
        self.message = (f"{s['fps']:.0f} fps, latency {lat:.0f} ms, dropped {s['frames_dropped']}"
                        if lat is not None else "waiting for frames…") + (" — recording" if self.recording else "")
        _redraw_sidebars()

    # --- recording ------------------------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        return self._record_frame is not None

    def record(self) -> None:
        """Start a recording at the scene's current frame."""
        if self.state != "live":
            raise engine_api.UserError("Live capture is not running yet: wait for it to start, then Record.")
        scene = bpy.data.scenes.get(self.scene_name)
        self._record_frame = scene.frame_current if scene is not None else 1
        self.live.record()

    def stop_recording(self):
        """End the recording: key it (new Actions) and save it; the Take, or None when no hand was seen."""
        if not self.recording:
            return None
        take = self.live.stop_recording()
        return self._keep(take)

    def _keep(self, take):
        start, self._record_frame = self._record_frame, None
        if take is None:
            self.message = "Recording stopped: no hand was seen, nothing keyed."
            return None
        actions = self._key_take(take, start)
        self.takes.append((take, actions))
        self.message = f"Recorded {len(take)} hand frames into {', '.join(actions)}"
        path = self._take_path(actions)
        if path is not None:   # compressing and syncing the file is no work for the UI thread
            saver = threading.Thread(target=self._save, args=(take, path), name="dahyf-live-save")
            self._saves.append(saver)
            saver.start()
        return take

    def _key_take(self, take, start_frame: int) -> list[str]:
        """Key each track of ``take`` onto its live rig, in a new Action, at scene time from ``start_frame``."""
        from dahyf.hand.tables import BONE_NAMES

        from .session import next_take_number

        scene = bpy.data.scenes.get(self.scene_name) or bpy.context.scene
        fps = scene.render.fps / scene.render.fps_base
        number = next_take_number(TAKE_STEM)
        names = []
        for tr in take.tracks():
            arm = bpy.data.objects.get(self.rig_names[tr.index])
            if len(tr) == 0 or arm is None:
                continue
            frames, keep = scene_frames(tr.time_s, fps, start_frame)
            keyer = keying.TrackKeyer(arm, f"{TAKE_STEM}.take{number:03d}.{tr.handedness}{tr.index}", BONE_NAMES,
                                      self.bone_rest[tr.index], key_location=self.key_location)
            keyer.append(frames, tr.pose[keep], tr.transl[keep], tr.confidence[keep], tr.filled[keep], write=True)
            keyer.action.use_fake_user = True   # later takes replace it on the rig; keep it in the file
            names.append(keyer.action.name)
            scene.frame_end = max(scene.frame_end, int(frames[-1]))
        return names

    def _take_path(self, actions: list[str]) -> str | None:
        """Where to save the take of ``actions``: the take path (or next to the saved .blend), never
        over an earlier take (.002, .003 ...); None: nowhere."""
        path = self.take_path
        if not path and bpy.data.filepath and actions:
            path = os.path.join(os.path.dirname(bpy.data.filepath), actions[0].rsplit(".", 1)[0] + ".npz")
        if not path:
            return None
        stem, ext = os.path.splitext(bpy.path.abspath(path))
        path, n = stem + (ext or ".npz"), 1
        while os.path.exists(path) or path in self._paths:   # an earlier take: number this one
            n += 1
            path = f"{stem}.{n:03d}{ext or '.npz'}"
        self._paths.append(path)
        return path

    def _save(self, take, path: str) -> None:
        """(saver thread) Write the take; the outcome goes into :attr:`saved` and the message."""
        try:
            self.saved.append((take, str(take.save(path))))
            self.message += f"; saved {os.path.basename(path)}"
        except engine_api.DaHyFUserError as exc:   # keyed already; say why the file is missing
            self.save_errors.append(str(exc))
            self.message += f"; NOT saved: {exc}"
            print(f"DaHyF live: {exc}")

    def wait_saved(self, timeout: float = 30.0) -> None:
        """Block until the takes being saved are written (scripts, tests, unregister)."""
        for saver in self._saves:
            saver.join(timeout)

    # --- ending ---------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop the session (the Stop button): a running recording is keyed and saved."""
        if self.state == "starting" and self.live is None:
            self._cancel.set()   # the starter stops what it opens; the next tick reports it
            self.message = "stopping…"
            return
        if self.state in ("starting", "live"):
            self._end(None)

    def _end(self, error) -> None:
        for driver in self.plans.values():
            driver.close()
        take = self.live.stop()
        kept = None
        if self.recording:
            kept = self._keep(take)
        self.state = "failed" if error is not None else "stopped"
        done = self.message if kept is not None else ""
        if error is not None:
            self.message = f"{error}" + (f" Kept: {done}" if done else "")
            _report_error(self.message)
        elif not done:
            self.message = "Live capture stopped."
        self._undrive()
        _redraw_sidebars()

    def _fail(self, message: str, report: bool = True) -> None:
        """The session could not start or broke down: report it; rigs made for it go again."""
        if self.live is not None:
            self._end(RuntimeError(message))
            return
        self.state, self.message = ("failed" if report else "stopped"), message
        self._undrive()
        self._remove_new_rigs()
        if report:
            _report_error(message)
        _redraw_sidebars()

    def _undrive(self) -> None:
        live_drive.undrive(self.constrained)
        self.constrained = None

    def _remove_new_rigs(self) -> None:
        """Remove the live rigs this session made (it never ran: they were never driven)."""
        for arm in self._new_rigs:
            try:
                for child in list(arm.children):
                    bpy.data.objects.remove(child)
                bpy.data.objects.remove(arm)
            except ReferenceError:
                pass
        self._new_rigs.clear()

    def tick_stats(self) -> dict:
        """Main-thread time per tick, ms (p50, p95, max) and the number of ticks."""
        t = np.array(self.tick_s) * 1e3
        if not len(t):
            return {"ticks": 0}
        return {"ticks": len(t), "p50": float(np.percentile(t, 50)), "p95": float(np.percentile(t, 95)),
                "max": float(t.max())}


def scene_frames(time_s: np.ndarray, fps: float, start_frame: int) -> tuple[np.ndarray, np.ndarray]:
    """Scene frames of rows at ``time_s`` (N,) s after a recording started at ``start_frame``.

    Returns (frames (K,), keep (K,) row indices): one row per scene frame (the latest of those
    that round to it), frames increasing.
    """
    frames = start_frame + np.round(np.asarray(time_s, np.float64) * fps).astype(np.int64)
    last = np.r_[frames[1:] != frames[:-1], True]   # rows are in time order: keep each frame's last
    keep = np.flatnonzero(last)
    return frames[keep], keep


def _report_error(message: str) -> None:
    """Say ``message`` where the user sees it: a popup when there is a window, and the console."""
    print(f"DaHyF live: {message}")
    wm = getattr(bpy.context, "window_manager", None)
    if bpy.app.background or wm is None or not wm.windows:   # a popup without a UI crashes bpy 5.0.1
        return

    def draw(menu, _context):
        menu.layout.label(text=message)

    try:
        wm.popup_menu(draw, title="DaHyF live capture", icon="ERROR")
    except (RuntimeError, AttributeError):
        pass


def _redraw_sidebars() -> None:
    wm = getattr(bpy.context, "window_manager", None)
    for window in getattr(wm, "windows", ()):
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()
