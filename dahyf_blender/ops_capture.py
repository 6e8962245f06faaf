"""``dahyf.capture_video`` and ``dahyf.capture_stop``: a :class:`.capture_job.CaptureJob` from the panel or a script.

In the UI the capture is modal: the engine runs on a worker thread and sends its chunks through a
queue; a window-manager timer drains it on the main thread (the only thread that touches bpy),
keys each chunk and updates the progress (status bar, and a bar with a Stop button in the panel:
:func:`running_captures`). Esc or Stop asks the engine to stop; the frames keyed so far stay as a
valid, shorter take. While a capture runs the operator's ``poll`` refuses a second one. With
``EXEC_DEFAULT`` (scripts, background) the same job runs synchronously.

The operator is ``{'UNDO'}`` without ``'REGISTER'``: a finished capture is one undo step, and
*Adjust Last Operation* (which needs 'REGISTER') cannot re-run a whole capture synchronously.
"""
from __future__ import annotations

import os

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from . import compat, engine_api, rig
from .capture_job import CaptureJob, default_take_path
from .prefs import DEFAULTS
from .props import HANDS_DEFAULT, HANDS_ITEMS, LENS_DESCRIPTION

#: Seconds between two modal timer steps.
TIMER_STEP_S = 0.1

#: Modal captures in progress (the panel's progress bar, the operators' poll, :func:`unregister`:
#: Blender frees a modal operator whose class is unregistered without calling its ``cancel``).
_RUNNING: list["ModalCapture"] = []


def running_captures() -> list["ModalCapture"]:
    """The modal captures in progress (at most one: ``poll`` refuses a second)."""
    return list(_RUNNING)


def stop_running_captures() -> None:
    """Stop every modal capture's engine and remove its timer, progress and status text."""
    for run in list(_RUNNING):
        run.job.cancel.set()
        run.close()


def retarget_captured(context, job: CaptureJob, report) -> None:
    """Target 'Existing armature': bake each captured hand onto it with the retarget preset."""
    settings = getattr(context.scene, "dahyf", None)
    if settings is None or settings.target != "ARMATURE" or settings.target_armature is None:
        return
    from . import retarget

    for arm in job.session.armatures:
        side = "RIGHT" if arm.get(rig.SIDE_PROP) == "right" else "LEFT"
        try:
            action, plan = retarget.retarget_objects(context, arm, settings.target_armature,
                                                     settings.retarget_preset or "AUTO", target_side=side)
        except Exception as exc:  # the capture stays on the hand rig; say why the retarget did not happen
            report({"WARNING"}, f"Retarget of {arm.name} onto {settings.target_armature.name} failed: {exc}")
            continue
        for note in plan.notes:
            report({"WARNING"}, note)
        report({"INFO"}, f"Retargeted {arm.name} onto {settings.target_armature.name}: Action {action.name!r}")


def end_capture(context, job: CaptureJob, finish, report) -> set[str]:
    """Run ``finish`` (``job.run`` or ``job.finish``); report its error, or what was captured (and
    retarget it when asked for). Returns the operator's result."""
    try:
        finish()
    except Exception as exc:
        report({"ERROR"}, engine_api.describe_error(exc))
        return {"CANCELLED"}
    report_finished(context, job, report)
    return {"FINISHED"}


def report_finished(context, job: CaptureJob, report) -> None:
    """After a capture: the retarget (if asked for), what was captured, and warnings about the take."""
    retarget_captured(context, job, report)
    names = ", ".join(a.name for a in job.session.armatures)
    what = "Cancelled; kept" if job.cancel.is_set() else "Captured"
    report({"INFO"}, f"{what} {job.session.num_frames} hand frames of {os.path.basename(job.video)} onto {names}")
    for note in job.notes():
        report({"WARNING"}, note)
    focal_note = job.focal_note()
    if focal_note:
        report({"INFO"}, focal_note)


class ModalCapture:
    """A capture driven by the window manager: timer, progress, status text, Esc / Stop, the end.

    The modal operator holds one and passes it its events (:meth:`handle`, which returns the
    operator's result set); ``report`` is the operator's ``report``.
    """

    def __init__(self, job: CaptureJob, report):
        self.job = job
        self.report = report
        self.wm = None
        self.workspace = None
        self.timer = None

    @property
    def text(self) -> str:
        """Progress in words, for the status bar and the panel."""
        job = self.job
        if job.cancel.is_set():
            return f"stopping… ({job.session.num_frames} hand frames keyed)"
        if not job.chunks:
            return "starting the engine…"
        return f"frame {job.frames_done}/{job.frames_total or '?'}, {job.session.num_frames} hand frames keyed"

    def start(self, context) -> None:
        """Start the engine thread, the timer and the progress display."""
        self.wm, self.workspace = context.window_manager, context.workspace
        self.job.start_thread()
        self.timer = self.wm.event_timer_add(TIMER_STEP_S, window=context.window)
        self.wm.progress_begin(0, 1000)
        _RUNNING.append(self)
        self._show()

    def stop(self) -> None:
        """What Esc and the Stop button do: the engine ends its stream with the rows so far."""
        self.job.cancel.set()
        self._show()

    def handle(self, context, event) -> set[str]:
        """One event of the modal operator."""
        if event.type == "ESC" and event.value == "PRESS":
            self.stop()
            return {"RUNNING_MODAL"}
        if _is_undo_key(event):
            # Undo would free the objects being keyed under the running capture: hold it until the
            # capture ends (it is one undo step then).
            self.report({"WARNING"}, "Undo is paused while capturing: press Esc to stop first")
            return {"RUNNING_MODAL"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        return self.tick(context)

    def tick(self, context) -> set[str]:
        """Key what arrived; at the end of the stream, finish the take and report."""
        job = self.job
        try:
            ended = job.step()
        except Exception as exc:
            job.abort()
            self.close()
            self.report({"ERROR"}, engine_api.describe_error(exc))
            return {"CANCELLED"}
        self.wm.progress_update(int(1000 * job.progress))
        self._show()
        if not ended:
            return {"RUNNING_MODAL"}
        self.close()
        return end_capture(context, job, job.finish, self.report)

    def close(self) -> None:
        """Remove the timer, the progress and the status text (once; safe to call again)."""
        if self in _RUNNING:
            _RUNNING.remove(self)
        try:
            if self.timer is not None:
                self.wm.event_timer_remove(self.timer)
                self.timer = None
                self.wm.progress_end()
            if self.workspace is not None:
                self.workspace.status_text_set(None)
        except ReferenceError:  # window manager or workspace already freed
            pass
        self._redraw_panels()

    def _show(self) -> None:
        if self.workspace is not None and self in _RUNNING:
            self.workspace.status_text_set(f"DaHyF capture: {self.text} — Esc to stop")
        self._redraw_panels()

    def _redraw_panels(self) -> None:
        """Redraw the 3D viewports' sidebars, where the panel shows the progress bar."""
        for window in getattr(self.wm, "windows", ()):
            for area in window.screen.areas if window.screen else ():
                if area.type == "VIEW_3D":
                    area.tag_redraw()


def _is_undo_key(event) -> bool:
    """Ctrl/Cmd+Z and Ctrl/Cmd+Shift+Z (undo, redo) key presses."""
    return event.type == "Z" and event.value == "PRESS" and (event.ctrl or event.oskey)


def _poll_idle(cls) -> bool:
    if _RUNNING:
        cls.poll_message_set("A capture is running: press Stop (or Esc) first")
        return False
    return True


#: Scene setting (``scene.dahyf``) of each operator property the panel's button leaves unset.
_FROM_SCENE = {"filepath": "video", "hands": "hands", "use_frame_range": "use_frame_range",
               "frame_start": "frame_start", "frame_end": "frame_end", "threshold": "threshold",
               "smoothing": "smoothing", "key_location": "key_location", "lens_mm": "lens_mm"}


class DAHYF_OT_capture_video(bpy.types.Operator):
    """Capture hand motion from a video onto new hand rigs (runs in the background; Esc or Stop ends it)"""

    bl_idname = "dahyf.capture_video"
    bl_label = "Capture from Video"
    bl_options = {"UNDO"}

    # SKIP_SAVE: the panel's scene settings fill whatever a caller does not set (see _fill_from_scene).
    filepath: StringProperty(name="Video", subtype="FILE_PATH", default="", options=compat.path_options("SKIP_SAVE"))
    hands: EnumProperty(name="Hands", items=HANDS_ITEMS, default=HANDS_DEFAULT, options={"SKIP_SAVE"})
    use_frame_range: BoolProperty(name="Use frame range", default=False, options={"SKIP_SAVE"})
    frame_start: IntProperty(name="Start", min=0, default=0, options={"SKIP_SAVE"})
    frame_end: IntProperty(name="End", min=1, default=250, options={"SKIP_SAVE"})
    threshold: FloatProperty(name="Confidence threshold", min=0.0, max=1.0, default=DEFAULTS.threshold,
                             options={"SKIP_SAVE"})
    smoothing: FloatProperty(name="Smoothing", min=0.0, max=1.0, default=DEFAULTS.smoothing, options={"SKIP_SAVE"})
    key_location: BoolProperty(name="Key wrist location", default=True, options={"SKIP_SAVE"})
    lens_mm: FloatProperty(name="Lens (35 mm equiv.)", min=0.0, soft_max=300.0, default=0.0, precision=1,
                           description=LENS_DESCRIPTION, options={"SKIP_SAVE"})
    take_path: StringProperty(name="Save take", subtype="FILE_PATH", default="",
                              description="Also save the take (.npz + .json) here; empty: next to the .blend "
                                          "when it is saved, else not at all",
                              options=compat.path_options("SKIP_SAVE"))

    _modal: ModalCapture | None = None

    @classmethod
    def poll(cls, context):
        return _poll_idle(cls)

    def _fill_from_scene(self, context) -> None:
        settings = getattr(context.scene, "dahyf", None)
        if settings is None:
            return
        from .props import apply_preference_defaults

        apply_preference_defaults(context.scene)
        for op_name, scene_name in _FROM_SCENE.items():
            if not self.properties.is_property_set(op_name):
                setattr(self, op_name, getattr(settings, scene_name))

    def _make_job(self, context) -> CaptureJob | None:
        """The capture the operator's settings describe, or None after reporting why there is none."""
        try:
            return self._new_job(context)
        except Exception as exc:
            self.report({"ERROR"}, engine_api.describe_error(exc))
            return None

    def _new_job(self, context) -> CaptureJob:
        settings = getattr(context.scene, "dahyf", None)
        if settings is not None and settings.target == "ARMATURE" and settings.target_armature is None:
            raise engine_api.UserError("Target is 'Existing armature' but no armature is chosen: pick one in the "
                                       "DaHyF panel, or set Target to 'New hand rig'.")
        job = CaptureJob(context, self.filepath, self.hands.lower(),
                         (self.frame_start, self.frame_end) if self.use_frame_range else None,
                         self.threshold, self.smoothing, self.key_location, self.take_path,
                         lens_mm=self.lens_mm or None)
        job.take_path = job.take_path or default_take_path(job)
        return job

    # --- EXEC_DEFAULT: synchronous ----------------------------------------------------------------
    def execute(self, context):
        self._fill_from_scene(context)
        job = self._make_job(context)
        return {"CANCELLED"} if job is None else end_capture(context, job, job.run, self.report)

    # --- INVOKE_DEFAULT: modal --------------------------------------------------------------------
    def invoke(self, context, event):
        self._fill_from_scene(context)
        if context.window is None or bpy.app.background:  # no UI event loop: run synchronously
            return self.execute(context)
        job = self._make_job(context)
        if job is None:
            return {"CANCELLED"}
        self._modal = ModalCapture(job, self.report)
        self._modal.start(context)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        return self._modal.handle(context, event)

    def cancel(self, context):
        """Blender ends the capture (window closed, another file loaded): stop the engine, clean up."""
        if self._modal is not None:
            self._modal.job.cancel.set()
            self._modal.close()


class DAHYF_OT_capture_stop(bpy.types.Operator):
    """Stop the running capture; the frames captured so far stay as a shorter take"""

    bl_idname = "dahyf.capture_stop"
    bl_label = "Stop Capture"
    bl_options = {"INTERNAL"}

    @classmethod
    def poll(cls, context):
        return bool(_RUNNING)

    def execute(self, context):
        for run in running_captures():
            run.stop()
        return {"FINISHED"}


classes = (DAHYF_OT_capture_video, DAHYF_OT_capture_stop)


register, _unregister_classes = bpy.utils.register_classes_factory(classes)


def unregister():
    stop_running_captures()
    _unregister_classes()
