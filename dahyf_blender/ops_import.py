"""``dahyf.import_take``: bring a take saved by the CLI (``dahyf capture``) into the scene.

It goes through the same :class:`.session.TakeSession` as a live capture: one rig and one new
Action per track, the matched camera, the video as background when it can be found.
"""
from __future__ import annotations

import os

import bpy
from bpy.props import BoolProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from . import engine_api, session
from .prefs import get_prefs


def import_take(context, filepath: str, video: str = "", key_location: bool = True) -> session.TakeSession:
    """Import the take at ``filepath`` (.npz); returns the session (rigs, actions, camera).

    Raises
    ------
    engine_api.UserError
        When the file is not a readable take or holds no rows; the scene is left unchanged.
    """
    import dahyf

    path = bpy.path.abspath(filepath)
    try:
        take = dahyf.Take.load(path)
    except dahyf.CaptureError as exc:
        raise engine_api.UserError(str(exc)) from None
    if len(take) == 0:
        raise engine_api.UserError(f"{os.path.basename(path)} holds no captured frames; nothing to import.")
    source = bpy.path.abspath(video) if video else str(take.meta.get("source", "") or "")
    if source and not os.path.isfile(source):  # moved video: look next to the take
        beside = os.path.join(os.path.dirname(path), os.path.basename(source))
        source = beside if os.path.isfile(beside) else source
    name = source or os.path.splitext(path)[0]
    sess = session.TakeSession(context, get_prefs(context), name, key_location=key_location,
                               video_background=bool(source and os.path.isfile(source)))
    sess.video = source  # the video looked for ('' when the take records none)
    try:
        sess.add_rows(engine_api.as_rows(take))
        sess.flush()
    except BaseException:
        sess.rollback()
        raise
    return sess


class DAHYF_OT_import_take(bpy.types.Operator, ImportHelper):
    """Import a DaHyF take (.npz written by `dahyf capture`) as keyed hand rigs over its video"""

    bl_idname = "dahyf.import_take"
    bl_label = "Import DaHyF Take"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})
    video: StringProperty(name="Video", subtype="FILE_PATH", default="",
                          description="The take's video (default: the source recorded in the take)")
    key_location: BoolProperty(name="Key wrist location", default=True)

    def execute(self, context):
        try:
            sess = import_take(context, self.filepath, self.video, self.key_location)
        except engine_api.UserError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Imported {sess.num_frames} hand frames onto "
                              f"{', '.join(a.name for a in sess.armatures)}")
        if not sess.video_background:
            where = f" ({sess.video}) was not found" if sess.video else " is not recorded in it"
            self.report({"WARNING"}, f"The take's video{where}, so the camera has no video background: "
                                     "import again with 'Video' set to the video file.")
        return {"FINISHED"}


def menu_func(self, context):
    self.layout.operator(DAHYF_OT_import_take.bl_idname, text="DaHyF Take (.npz)")


classes = (DAHYF_OT_import_take,)


_register_classes, _unregister_classes = bpy.utils.register_classes_factory(classes)


def register():
    _register_classes()
    bpy.types.TOPBAR_MT_file_import.append(menu_func)


def unregister():
    bpy.types.TOPBAR_MT_file_import.remove(menu_func)
    _unregister_classes()
