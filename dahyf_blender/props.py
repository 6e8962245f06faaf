"""Per-scene capture settings shown in the DaHyF panel (``scene.dahyf``)."""
from __future__ import annotations

import bpy
from bpy.app.handlers import persistent
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from dahyf.capture.settings import TYPICAL_LENSES

from . import compat
from .prefs import DEFAULTS

HANDS_ITEMS = (
    ("RIGHT", "Right", "Capture the right hand"),
    ("LEFT", "Left", "Capture the left hand"),
    ("BOTH", "Both", "Capture both hands (one rig each)"),
)
#: Both: a one-hand video gives one rig either way, while 'Right' on a left-hand video found at most a
#: short ghost 'right' hand (a misclassified frame or two), which looked like a capture.
HANDS_DEFAULT = "BOTH"
TARGET_ITEMS = (
    ("NEW_RIG", "New hand rig", "Create a MANO hand rig (armature + skinned mesh) per captured hand"),
    ("ARMATURE", "Existing armature", "Retarget onto an existing armature with a retarget preset"),
)


#: Tooltips of the lens settings: what a lens is, then what 0 means for a video file / a live camera.
_LENS_HELP = (f"The camera's lens as its 35 mm-equivalent focal length in mm ({TYPICAL_LENSES}). It sets how far "
              "from the camera the hands are. 0: ")
_GUESS = "a guess that can put the hands tens of percent too near or too far"
LENS_DESCRIPTION = _LENS_HELP + "automatic - the video file's own value where the phone wrote one, else " + _GUESS
LIVE_LENS_DESCRIPTION = _LENS_HELP + _GUESS


def is_armature(self, obj):
    return obj.type == "ARMATURE"


class DAHYF_PG_settings(bpy.types.PropertyGroup):
    video: StringProperty(name="Video", subtype="FILE_PATH", description="Video file with the hand(s) to capture",
                          options=compat.path_options())
    hands: EnumProperty(name="Hands", items=HANDS_ITEMS, default=HANDS_DEFAULT)
    use_frame_range: BoolProperty(name="Frame range", default=False,
                                  description="Capture only part of the video (video frames, first frame is 0)")
    frame_start: IntProperty(name="Start", min=0, default=0, description="First video frame (0-based)")
    frame_end: IntProperty(name="End", min=1, default=250, description="Video frame after the last one captured")
    threshold: FloatProperty(name="Confidence threshold", min=0.0, max=1.0, default=DEFAULTS.threshold,
                             description="Frames below this confidence hold the last confident pose (marked as holds)")
    smoothing: FloatProperty(name="Smoothing", min=0.0, max=1.0, default=DEFAULTS.smoothing,
                             description="Temporal smoothing: 0 none, 1 strong")
    key_location: BoolProperty(name="Key wrist location", default=True,
                               description="Key the wrist translation so the hand follows the video in camera view")
    lens_mm: FloatProperty(name="Lens (35 mm equiv.)", min=0.0, soft_max=300.0, default=0.0, precision=1,
                           description=LENS_DESCRIPTION)
    target: EnumProperty(name="Target", items=TARGET_ITEMS, default="NEW_RIG")
    target_armature: PointerProperty(name="Armature", type=bpy.types.Object, poll=is_armature)
    retarget_preset: StringProperty(name="Preset", default="AUTO",
                                    description="Retarget preset of the target armature (AUTO: match bone names)")
    defaults_applied: BoolProperty(default=False, options={"HIDDEN"},
                                   description="Threshold and smoothing were set from the add-on preferences")


def apply_preference_defaults(scene) -> None:
    """Give a scene that never had DaHyF settings the preferences' default threshold and smoothing.

    A value the artist already set in the panel is kept (e.g. in the file that was open when the
    add-on was enabled: no file load has applied the defaults there yet).
    """
    from .prefs import get_prefs

    s = scene.dahyf
    if not s.defaults_applied:
        prefs = get_prefs()
        for name in ("threshold", "smoothing"):
            if not s.is_property_set(name):
                setattr(s, name, getattr(prefs, name))
        s.defaults_applied = True


@persistent
def _on_load_post(*_args):
    for scene in bpy.data.scenes:
        apply_preference_defaults(scene)


def scene_settings_factory(classes, attr: str, group, handlers=()):
    """``(register, unregister)`` of a module whose settings live on each scene (``scene.<attr>``).

    ``register`` registers ``classes`` (in order), adds ``bpy.types.Scene.<attr>``, a pointer to the
    PropertyGroup ``group``, and appends each ``(name, function)`` of ``handlers`` to
    ``bpy.app.handlers.<name>``; ``unregister`` undoes it in reverse order.
    """
    register_classes, unregister_classes = bpy.utils.register_classes_factory(classes)

    def register():
        register_classes()
        setattr(bpy.types.Scene, attr, PointerProperty(type=group))
        for name, function in handlers:
            getattr(bpy.app.handlers, name).append(function)

    def unregister():
        for name, function in reversed(handlers):
            if function in getattr(bpy.app.handlers, name):
                getattr(bpy.app.handlers, name).remove(function)
        delattr(bpy.types.Scene, attr)
        unregister_classes()

    return register, unregister


classes = (DAHYF_PG_settings,)

register, unregister = scene_settings_factory(classes, "dahyf", DAHYF_PG_settings, (("load_post", _on_load_post),))
