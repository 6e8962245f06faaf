"""``dahyf.import_take``: bring a take saved by the CLI (``dahyf capture``) into the scene.

It goes through the same :class:`.session.TakeSession` as a live capture: one rig and one new
Action per track, the matched camera, the video as background when it can be found — the
*Video* field, else the file named like the take's recorded source in the take's folder (never
the recorded path itself: :mod:`.paths`). Any error is reported after everything the import made
is removed.
"""
from __future__ import annotations

import os

import bpy
from bpy.props import BoolProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from . import compat, engine_api, paths, session
from .prefs import get_prefs
from .ui import menu_entry_factory


def import_take(context, filepath: str, video: str = "", key_location: bool = True) -> session.TakeSession:
    """Import the take at ``filepath`` (.npz; ``//`` allowed); returns the session (rigs, actions, camera).

    ``video`` (``//`` allowed) overrides the video looked for next to the take.

    Raises
    ------
    engine_api.UserError
        When the file is not a readable take, holds no rows, or the scene cannot take it; the
        scene is left unchanged.
    """
    import dahyf

    path = paths.absolute(filepath, "Take")
    try:
        take = dahyf.Take.load(path)
    except dahyf.DaHyFUserError as exc:
        raise engine_api.UserError(str(exc)) from None
    return apply_take(context, take, path, video, key_location)


def apply_take(context, take, take_path: str, video: str = "", key_location: bool = True) -> session.TakeSession:
    """Key a loaded ``dahyf.Take`` (read from ``take_path``) into the scene; see :func:`import_take`.

    The session's ``video`` is the video used as background ('' when none was found) and
    ``video_name`` the one looked for. Any error removes everything made so far and is raised as
    :class:`~.engine_api.UserError`.
    """
    name_of_take = os.path.basename(take_path)
    if len(take) == 0:
        raise engine_api.UserError(f"{name_of_take} holds no captured frames; nothing to import.")
    recorded = paths.recorded_file_name(take.meta.get("source", ""))
    found = paths.absolute(video, "Video") if video else paths.video_beside_take(take_path, recorded)
    if video and not os.path.isfile(found):
        raise engine_api.UserError(f"Video not found: {found}. Pick an existing video file, or leave 'Video' empty.")
    sess = session.TakeSession(context, get_prefs(context), found or recorded or os.path.splitext(take_path)[0],
                               key_location=key_location, video_background=bool(found))
    sess.video, sess.video_name = found, found or recorded
    try:
        sess.add_rows(engine_api.as_rows(take))
        sess.flush()
    except Exception as exc:
        sess.rollback()
        raise engine_api.UserError(engine_api.describe_error(exc, f"Importing {name_of_take}")) from exc
    return sess


class DAHYF_OT_import_take(bpy.types.Operator, ImportHelper):
    """Import a DaHyF take (.npz written by `dahyf capture`) as keyed hand rigs over its video"""

    bl_idname = "dahyf.import_take"
    bl_label = "Import DaHyF Take"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".npz"
    filepath: StringProperty(name="File Path", subtype="FILE_PATH", default="", options=compat.path_options())
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})
    video: StringProperty(name="Video", subtype="FILE_PATH", default="", options=compat.path_options(),
                          description="The take's video (default: the file named like the take's source video, "
                                      "next to the take)")
    key_location: BoolProperty(name="Key wrist location", default=True)

    def execute(self, context):
        try:
            sess = import_take(context, self.filepath, self.video, self.key_location)
        except Exception as exc:
            self.report({"ERROR"}, engine_api.describe_error(exc, "Import"))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Imported {sess.num_frames} hand frames onto "
                              f"{', '.join(a.name for a in sess.armatures)}")
        if not sess.video_background:
            where = (f" ({os.path.basename(sess.video_name)}) was not found next to the take" if sess.video_name
                     else " is not recorded in it")
            self.report({"WARNING"}, f"The take's video{where}, so the camera has no video background: "
                                     "import again with 'Video' set to the video file.")
        return {"FINISHED"}


def menu_func(self, context):
    self.layout.operator(DAHYF_OT_import_take.bl_idname, text="DaHyF Take (.npz)")


classes = (DAHYF_OT_import_take,)

register, unregister = menu_entry_factory(classes, "TOPBAR_MT_file_import", menu_func)
