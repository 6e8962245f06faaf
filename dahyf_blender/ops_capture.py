"""``dahyf.capture_video``: run the engine on a video and key the result onto hand rigs.

In the UI the operator is modal: the engine runs on a worker thread and sends its chunks through
a queue; a window-manager timer drains the queue on the main thread (the only thread that
touches bpy), keys each chunk and updates the progress in the status bar. Esc asks the engine to
stop; the frames keyed so far stay as a valid, shorter take. With ``EXEC_DEFAULT`` (scripts,
background) the same :class:`CaptureJob` runs synchronously. A failure or a video without hands
removes whatever the capture created, so the scene is left as it was.
"""
from __future__ import annotations

import os
import queue
import threading
import traceback
from types import SimpleNamespace

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from . import compat, engine_api, session
from dahyf.capture.settings import DEFAULT_CHUNK_FRAMES
from dahyf.errors import DaHyFUserError

from .prefs import DEFAULTS, get_prefs
from .props import HANDS_ITEMS

#: Seconds between two modal timer steps.
TIMER_STEP_S = 0.1


class CaptureJob:
    """One capture: validation, the engine stream, keying of its chunks, the resulting Take.

    Parameters
    ----------
    context : bpy.types.Context.
    video : path of the video file.
    hands : 'right' | 'left' | 'both'.
    frame_range : (start, end) video frames, end exclusive, or None for the whole video.
    threshold, smooth : engine confidence threshold and smoothing (0..1).
    key_location : key the wrist translation.
    take_path : where to save the take (.npz + .json); '' for nowhere.
    chunk_frames : video frames per engine chunk (one keying step each).

    Raises
    ------
    engine_api.UserError
        Before touching the scene, when the input cannot work (missing video, bad MANO folder...).
    """

    def __init__(self, context, video: str, hands: str = "right", frame_range=None, threshold: float = DEFAULTS.threshold,
                 smooth: float = DEFAULTS.smoothing, key_location: bool = True, take_path: str = "",
                 chunk_frames: int = DEFAULT_CHUNK_FRAMES):
        compat.check_blender_version()
        self.prefs = prefs_snapshot(get_prefs(context))  # plain values: the worker thread reads them
        video = bpy.path.abspath(video) if video else ""
        if not video:
            raise engine_api.UserError("No video chosen. Pick a video file in the DaHyF panel.")
        if not os.path.isfile(video):
            raise engine_api.UserError(f"Video not found: {video}. Pick an existing video file.")
        if take_path:
            folder = os.path.dirname(os.path.abspath(bpy.path.abspath(take_path)))
            if not os.path.isdir(folder):
                raise engine_api.UserError(f"Cannot save the take to {take_path}: folder {folder} does not exist. "
                                           "Create it, or choose another 'Save take' path.")
        if frame_range is not None and not (0 <= frame_range[0] < frame_range[1]):
            raise engine_api.UserError(f"Invalid frame range {frame_range}: need 0 <= start < end.")
        sides = ("right", "left") if hands == "both" else (hands,)
        for side in sides:  # fails early, with the preferences' message, on a wrong MANO folder
            engine_api.load_hand(self.prefs, side)
        self.video, self.hands, self.frame_range = video, hands, frame_range
        self.threshold, self.smooth, self.take_path = threshold, smooth, take_path
        self.chunk_frames = chunk_frames
        self.session = session.TakeSession(context, self.prefs, video, key_location=key_location)
        self.cancel = threading.Event()
        self.chunks: list = []
        self.frames_done = 0
        self.frames_total = 0
        self.take = None
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._finished_stream = False

    # --- the work ---------------------------------------------------------------------------------
    def stream(self):
        """The engine's chunks (runs on the worker thread in modal mode; no bpy here)."""
        engine = engine_api.load_engine(self.prefs)
        yield from engine.stream(self.video, hands=self.hands, frame_range=self.frame_range,
                                 threshold=self.threshold, smooth=self.smooth, chunk_frames=self.chunk_frames,
                                 cancel=self.cancel)

    def apply(self, chunk) -> None:
        """Key one chunk (main thread)."""
        self.chunks.append(chunk)
        self.frames_done = int(getattr(chunk, "frames_done", self.frames_done))
        self.frames_total = int(getattr(chunk, "frames_total", self.frames_total) or 0)
        self.session.add_rows(engine_api.as_rows(chunk))

    def run(self):
        """Synchronous capture (EXEC_DEFAULT): stream, key, finish. Returns the Take."""
        try:
            for chunk in self.stream():
                self.apply(chunk)
        except BaseException:
            self.session.rollback()
            raise
        self._finished_stream = True
        return self.finish()

    # --- modal driving ----------------------------------------------------------------------------
    def start_thread(self) -> None:
        """Start the engine on a worker thread; :meth:`step` collects its chunks."""
        def worker():
            try:
                for chunk in self.stream():
                    self._queue.put(("chunk", chunk))
                self._queue.put(("done", None))
            except BaseException as exc:  # reported on the main thread, never swallowed
                traceback.print_exc()
                self._queue.put(("error", exc))

        self._thread = threading.Thread(target=worker, name="dahyf-capture", daemon=True)
        self._thread.start()

    def step(self, max_chunks: int = 8) -> bool:
        """Key the chunks that arrived (main thread). True when the stream has ended.

        Raises the worker's exception, if any (the caller rolls back with :meth:`abort`).
        """
        for _ in range(max_chunks):
            try:
                kind, payload = self._queue.get_nowait()
            except queue.Empty:
                return False
            if kind == "chunk":
                self.apply(payload)
            elif kind == "error":
                raise payload
            else:
                self._finished_stream = True
                return True
        return False

    @property
    def progress(self) -> float:
        """0..1 share of the video decoded so far (0 while unknown)."""
        return min(1.0, self.frames_done / self.frames_total) if self.frames_total else 0.0

    def finish(self):
        """Close the capture: build (and save) the Take; no rows at all → roll back and raise."""
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.session.flush()
        if self.session.num_frames == 0:
            self.session.rollback()
            if self.cancel.is_set():
                raise engine_api.UserError("Capture cancelled before any hand frame was keyed; the scene is unchanged.")
            where = f" (frames {self.frame_range[0]}-{self.frame_range[1] - 1})" if self.frame_range else ""
            raise engine_api.UserError(
                f"No {'hands' if self.hands == 'both' else self.hands + ' hand'} found in "
                f"{os.path.basename(self.video)}{where}. Use a video where the hand is clearly visible, "
                "check the Hands setting, or lower the confidence threshold.")
        import dahyf

        meta = {"source": self.video, "take": self.session.take_name, "cancelled": self.cancel.is_set()}
        try:
            self.take = dahyf.Take.from_chunks(self.chunks, meta=meta)
            if self.take_path:
                self.take.save(bpy.path.abspath(self.take_path))
        except BaseException:  # e.g. the take folder vanished or the disk is full: leave nothing behind
            self.session.rollback()
            raise
        return self.take

    def abort(self) -> None:
        """Stop the worker and remove everything this capture created."""
        self.cancel.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.session.rollback()


def prefs_snapshot(prefs) -> SimpleNamespace:
    """Plain copy of the preferences (no bpy data): the engine reads them on the worker thread."""
    return SimpleNamespace(**{name: getattr(prefs, name, default) for name, default in vars(DEFAULTS).items()})


#: Modal captures in progress, for :func:`unregister` (Blender frees a modal operator whose class is
#: unregistered without calling its ``cancel``).
_RUNNING: list[SimpleNamespace] = []


def stop_running_captures() -> None:
    """Stop every modal capture's engine and remove its timer, progress and status text."""
    while _RUNNING:
        run = _RUNNING.pop()
        run.job.cancel.set()
        try:
            run.wm.event_timer_remove(run.timer)
            run.wm.progress_end()
            if run.workspace is not None:
                run.workspace.status_text_set(None)
        except ReferenceError:  # window manager or workspace already freed
            pass


def _hands_value(op) -> str:
    return op.hands.lower()


class DAHYF_OT_capture_video(bpy.types.Operator):
    """Capture hand motion from a video onto new hand rigs (runs in the background; Esc cancels)"""

    bl_idname = "dahyf.capture_video"
    bl_label = "Capture from Video"
    bl_options = {"REGISTER", "UNDO"}

    # SKIP_SAVE: the panel's scene settings fill whatever a caller does not set (see _fill_from_scene).
    filepath: StringProperty(name="Video", subtype="FILE_PATH", default="", options={"SKIP_SAVE"})
    hands: EnumProperty(name="Hands", items=HANDS_ITEMS, default="RIGHT", options={"SKIP_SAVE"})
    use_frame_range: BoolProperty(name="Use frame range", default=False, options={"SKIP_SAVE"})
    frame_start: IntProperty(name="Start", min=0, default=0, options={"SKIP_SAVE"})
    frame_end: IntProperty(name="End", min=1, default=250, options={"SKIP_SAVE"})
    threshold: FloatProperty(name="Confidence threshold", min=0.0, max=1.0, default=DEFAULTS.threshold,
                               options={"SKIP_SAVE"})
    smoothing: FloatProperty(name="Smoothing", min=0.0, max=1.0, default=DEFAULTS.smoothing, options={"SKIP_SAVE"})
    key_location: BoolProperty(name="Key wrist location", default=True, options={"SKIP_SAVE"})
    take_path: StringProperty(name="Save take", subtype="FILE_PATH", default="",
                              description="Also save the take (.npz + .json) here; empty: next to the .blend "
                                          "when it is saved, else not at all", options={"SKIP_SAVE"})

    _job: CaptureJob | None = None
    _timer = None
    _running: SimpleNamespace | None = None

    # --- shared setup -----------------------------------------------------------------------------
    def _fill_from_scene(self, context) -> None:
        settings = getattr(context.scene, "dahyf", None)
        if settings is None:
            return
        from .props import apply_preference_defaults

        apply_preference_defaults(context.scene)
        mapping = {"filepath": "video", "hands": "hands", "use_frame_range": "use_frame_range",
                   "frame_start": "frame_start", "frame_end": "frame_end", "threshold": "threshold",
                   "smoothing": "smoothing", "key_location": "key_location"}
        for op_name, scene_name in mapping.items():
            if not self.properties.is_property_set(op_name):
                setattr(self, op_name, getattr(settings, scene_name))

    def _make_job(self, context) -> CaptureJob:
        settings = getattr(context.scene, "dahyf", None)
        if settings is not None and settings.target == "ARMATURE" and settings.target_armature is None:
            raise engine_api.UserError("Target is 'Existing armature' but no armature is chosen: pick one in the "
                                       "DaHyF panel, or set Target to 'New hand rig'.")
        job = CaptureJob(context, self.filepath, _hands_value(self),
                         (self.frame_start, self.frame_end) if self.use_frame_range else None,
                         self.threshold, self.smoothing, self.key_location, self.take_path)
        if not job.take_path and bpy.data.filepath:  # default: next to the saved .blend
            job.take_path = os.path.join(os.path.dirname(bpy.data.filepath), job.session.take_name + ".npz")
        return job

    def _retarget(self, context, job: CaptureJob) -> None:
        """Target 'Existing armature': bake each captured hand onto it with the retarget preset."""
        settings = getattr(context.scene, "dahyf", None)
        if settings is None or settings.target != "ARMATURE" or settings.target_armature is None:
            return
        from . import retarget

        for arm in job.session.armatures:
            side = "RIGHT" if arm.get("dahyf_side") == "right" else "LEFT"
            try:
                action, plan = retarget.retarget_objects(context, arm, settings.target_armature,
                                                         settings.retarget_preset or "AUTO", target_side=side)
            except Exception as exc:  # the capture stays on the hand rig; say why the retarget did not happen
                self.report({"WARNING"}, f"Retarget of {arm.name} onto {settings.target_armature.name} failed: {exc}")
                continue
            for note in plan.notes:
                self.report({"WARNING"}, note)
            self.report({"INFO"}, f"Retargeted {arm.name} onto {settings.target_armature.name}: Action {action.name!r}")

    def _report_done(self, job: CaptureJob) -> None:
        names = ", ".join(a.name for a in job.session.armatures)
        what = "Cancelled; kept" if job.cancel.is_set() else "Captured"
        self.report({"INFO"}, f"{what} {job.session.num_frames} hand frames of {os.path.basename(job.video)} "
                              f"onto {names}")

    # --- EXEC_DEFAULT: synchronous ----------------------------------------------------------------
    def execute(self, context):
        self._fill_from_scene(context)
        try:
            job = self._make_job(context)
            job.run()
        except (engine_api.UserError, compat.UnsupportedBlender) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        except Exception as exc:
            self.report({"ERROR"}, _describe(exc))
            return {"CANCELLED"}
        self._retarget(context, job)
        self._report_done(job)
        return {"FINISHED"}

    # --- INVOKE_DEFAULT: modal --------------------------------------------------------------------
    def invoke(self, context, event):
        self._fill_from_scene(context)
        if context.window is None:  # no UI (background): run synchronously
            return self.execute(context)
        try:
            self._job = self._make_job(context)
        except (engine_api.UserError, compat.UnsupportedBlender) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self._job.start_thread()
        wm = context.window_manager
        self._timer = wm.event_timer_add(TIMER_STEP_S, window=context.window)
        wm.progress_begin(0, 1000)
        wm.modal_handler_add(self)
        self._running = SimpleNamespace(job=self._job, timer=self._timer, wm=wm, workspace=context.workspace)
        _RUNNING.append(self._running)
        self._status(context, "starting the engine…")
        return {"RUNNING_MODAL"}

    def cancel(self, context):
        """Blender ends the capture (window closed, another file loaded): stop the engine, clean up."""
        if self._job is not None:
            self._job.cancel.set()
        self._cleanup(context)

    def modal(self, context, event):
        job = self._job
        if event.type == "ESC" and event.value == "PRESS" and not job.cancel.is_set():
            job.cancel.set()  # the engine ends its stream with the rows so far
            self._status(context, "cancelling…")
            return {"RUNNING_MODAL"}
        if _is_undo_key(event):
            # Undo would free the objects being keyed under the running capture: hold it until the
            # capture ends (it is one undo step then).
            self.report({"WARNING"}, "Undo is paused while capturing: press Esc to stop first")
            return {"RUNNING_MODAL"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        try:
            ended = job.step()
        except Exception as exc:
            job.abort()
            self._cleanup(context)
            self.report({"ERROR"}, _describe(exc))
            return {"CANCELLED"}
        context.window_manager.progress_update(int(1000 * job.progress))
        self._status(context, f"frame {job.frames_done}/{job.frames_total or '?'}, "
                              f"{job.session.num_frames} hand frames keyed — Esc to stop")
        if not ended:
            return {"RUNNING_MODAL"}
        try:
            job.finish()
        except Exception as exc:
            self._cleanup(context)
            self.report({"ERROR"}, _describe(exc))
            return {"CANCELLED"}
        self._cleanup(context)
        self._retarget(context, job)
        self._report_done(job)
        return {"FINISHED"}

    def _status(self, context, text: str) -> None:
        if context.workspace is not None:
            context.workspace.status_text_set(f"DaHyF capture: {text}")

    def _cleanup(self, context) -> None:
        _RUNNING[:] = [r for r in _RUNNING if r is not self._running]
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        if context.workspace is not None:
            context.workspace.status_text_set(None)


def _is_undo_key(event) -> bool:
    """Ctrl/Cmd+Z and Ctrl/Cmd+Shift+Z (undo, redo) key presses."""
    return event.type == "Z" and event.value == "PRESS" and (event.ctrl or event.oskey)


def _describe(exc: BaseException) -> str:
    """User-facing text of an error: a :class:`~dahyf.errors.DaHyFUserError`'s message is already so."""
    if isinstance(exc, DaHyFUserError):
        return str(exc)
    return f"Capture failed ({type(exc).__name__}: {exc}). See the system console for details."


classes = (DAHYF_OT_capture_video,)


register, _unregister_classes = bpy.utils.register_classes_factory(classes)


def unregister():
    stop_running_captures()
    _unregister_classes()
