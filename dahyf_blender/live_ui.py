"""*Live* in the DaHyF panel: settings (``scene.dahyf_live``), Start / Record / Stop, the timer.

One live session at a time (:data:`SESSION`); its :meth:`.live.LiveSession.tick` runs as a
``bpy.app.timers`` timer. Loading another file or disabling the add-on stops it (a recording is
keyed and saved first).
"""
from __future__ import annotations

import bpy
from bpy.app.handlers import persistent
from bpy.props import BoolProperty, EnumProperty, FloatProperty, PointerProperty, StringProperty
from dahyf.capture.settings import DEFAULT_LIVE_SMOOTH
from dahyf.errors import DaHyFUserError

from . import compat, live
from .props import HANDS_ITEMS, LIVE_LENS_DESCRIPTION, is_armature, scene_settings_factory
from .ui import SidebarPanel

#: The running (or last) live session, None before the first.
SESSION: live.LiveSession | None = None


class DAHYF_PG_live(bpy.types.PropertyGroup):
    source: StringProperty(name="Source", default="0",
                           description="Camera number (0 is the first camera), device path (/dev/video0), network "
                                       "stream URL (rtsp://...) or a video file (played in real time)")
    hands: EnumProperty(name="Hands", items=HANDS_ITEMS, default="RIGHT")
    mirror: BoolProperty(name="Mirror (selfie)", default=False,
                         description="Flip the frames left-right: the rig moves like your reflection (also undoes a "
                                     "camera that mirrors on its own)")
    smoothing: FloatProperty(name="Smoothing", min=0.0, max=1.0, default=DEFAULT_LIVE_SMOOTH,
                             description="Causal smoothing of the live pose: 0 none (most responsive), 1 strong")
    lens_mm: FloatProperty(name="Lens (35 mm equiv.)", min=0.0, soft_max=300.0, default=0.0, precision=1,
                           description=LIVE_LENS_DESCRIPTION)
    drive_armature: PointerProperty(name="Drive", type=bpy.types.Object, poll=is_armature,
                                    description="Optional: an armature whose fingers follow the live hand (retarget "
                                                "live preview, same side)")
    drive_preset: StringProperty(name="Preset", default="AUTO",
                                 description="Retarget preset of the driven armature (AUTO: match bone names)")
    take_path: StringProperty(name="Save takes", subtype="FILE_PATH", default="",
                              description="Where recorded takes are saved (.npz + .json); empty: next to the .blend "
                                          "when it is saved, else not at all")


def _running() -> bool:
    return SESSION is not None and SESSION.state in ("starting", "live")


def _timer():
    """The registered timer: the session's tick (None removes the timer)."""
    if SESSION is None:
        return None
    return SESSION.tick()


class DAHYF_OT_live_start(bpy.types.Operator):
    """Start live capture: the camera (or stream, or video file) drives the live hand rig"""

    bl_idname = "dahyf.live_start"
    bl_label = "Start Live"

    @classmethod
    def poll(cls, context):
        return not _running()

    def execute(self, context):
        global SESSION
        s, cap = context.scene.dahyf_live, context.scene.dahyf
        try:
            compat.check_blender_version()
            SESSION = live.LiveSession(context, s.source, s.hands.lower(), s.mirror, s.smoothing, cap.threshold,
                                       cap.key_location, s.take_path, s.drive_armature, s.drive_preset,
                                       lens_mm=s.lens_mm or None)
        except (DaHyFUserError, compat.UnsupportedBlender) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if not bpy.app.timers.is_registered(_timer):
            bpy.app.timers.register(_timer, first_interval=live.TICK_S)
        self.report({"INFO"}, "Live capture starting…")
        return {"FINISHED"}


class DAHYF_OT_live_record(bpy.types.Operator):
    """Start or stop recording the live hand into a new Action (at scene time from the current frame)"""

    bl_idname = "dahyf.live_record"
    bl_label = "Record"

    @classmethod
    def poll(cls, context):
        return SESSION is not None and SESSION.state == "live"

    def execute(self, context):
        try:
            if SESSION.recording:
                take = SESSION.stop_recording()
                self.report({"INFO"} if take is not None else {"WARNING"}, SESSION.message)
            else:
                SESSION.record()
                self.report({"INFO"}, f"Recording from frame {context.scene.frame_current}")
        except DaHyFUserError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


class DAHYF_OT_live_stop(bpy.types.Operator):
    """Stop live capture (a running recording is keyed and saved)"""

    bl_idname = "dahyf.live_stop"
    bl_label = "Stop Live"

    @classmethod
    def poll(cls, context):
        return _running()

    def execute(self, context):
        stop_session()
        self.report({"INFO"}, SESSION.message)
        return {"FINISHED"}


def stop_session() -> None:
    """Stop the running session, if any, and its timer."""
    if SESSION is not None and SESSION.state in ("starting", "live"):
        SESSION.stop()
        if SESSION.state != "starting" and bpy.app.timers.is_registered(_timer):
            bpy.app.timers.unregister(_timer)
    if SESSION is not None:
        SESSION.wait_saved()


class DAHYF_PT_live(SidebarPanel, bpy.types.Panel):
    bl_label = "Live"
    bl_idname = "DAHYF_PT_live"

    def draw(self, context):
        s, cap = context.scene.dahyf_live, context.scene.dahyf
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        col = layout.column()
        col.enabled = not _running()
        col.prop(s, "source")
        col.prop(s, "hands", expand=True)
        col.prop(s, "mirror")
        col.prop(s, "smoothing")
        col.prop(s, "lens_mm")
        col.prop(cap, "threshold")
        col.prop(cap, "key_location")
        col.prop(s, "drive_armature")
        if s.drive_armature is not None:
            col.prop(s, "drive_preset")
        col.prop(s, "take_path")
        row = layout.row(align=True)
        row.scale_y = 1.4
        if _running():
            rec = SESSION.recording
            row.operator("dahyf.live_record", text="Stop recording" if rec else "Record",
                         icon="PAUSE" if rec else "REC", depress=rec)
            row.operator("dahyf.live_stop", text="Stop", icon="CANCEL")
        else:
            row.operator("dahyf.live_start", text="Start live", icon="PLAY")
        if SESSION is not None and SESSION.message:
            layout.label(text=SESSION.message, icon="ERROR" if SESSION.state == "failed" else "INFO")


@persistent
def _on_load_pre(*_args):
    stop_session()


classes = (DAHYF_PG_live, DAHYF_OT_live_start, DAHYF_OT_live_record, DAHYF_OT_live_stop, DAHYF_PT_live)

register, _unregister_settings = scene_settings_factory(classes, "dahyf_live", DAHYF_PG_live,
                                                        (("load_pre", _on_load_pre),))


def unregister():
    global SESSION
    stop_session()
    if bpy.app.timers.is_registered(_timer):
        bpy.app.timers.unregister(_timer)
    SESSION = None
    _unregister_settings()
