"""Add-on preferences: compute device, optional MANO folder and checkpoint, capture defaults."""
from __future__ import annotations

from types import SimpleNamespace

import bpy
from bpy.props import EnumProperty, FloatProperty, StringProperty
from dahyf.capture.settings import DEFAULT_SMOOTH, DEFAULT_THRESHOLD

DEVICE_ITEMS = (
    ("AUTO", "Auto", "CUDA when available, else CPU"),
    ("CPU", "CPU", "Always run the engine on the CPU"),
    ("CUDA", "CUDA", "Run on an NVIDIA GPU (needs the CUDA build of the extension)"),
)

#: Defaults, also used when the add-on runs without its preferences entry (scripts, tests).
DEFAULTS = SimpleNamespace(device="AUTO", mano_folder="", checkpoint="", threshold=DEFAULT_THRESHOLD,
                           smoothing=DEFAULT_SMOOTH)


class DAHYF_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    device: EnumProperty(name="Device", items=DEVICE_ITEMS, default=DEFAULTS.device)
    mano_folder: StringProperty(
        name="MANO folder", subtype="DIR_PATH", default="",
        description="Optional: folder holding MANO_RIGHT.pkl and MANO_LEFT.pkl (https://mano.is.tue.mpg.de). "
                    "Empty: the bundled open hand model")
    checkpoint: StringProperty(
        name="Checkpoint", subtype="FILE_PATH", default="",
        description="Optional: a DaHyF engine checkpoint (.npz; an older .pt needs torch). Empty: the bundled default engine")
    threshold: FloatProperty(name="Default threshold", min=0.0, max=1.0, default=DEFAULTS.threshold,
                             description="Default confidence threshold of new scenes")
    smoothing: FloatProperty(name="Default smoothing", min=0.0, max=1.0, default=DEFAULTS.smoothing,
                             description="Default temporal smoothing of new scenes")

    def draw(self, context):
        col = self.layout.column()
        col.prop(self, "device")
        col.prop(self, "mano_folder")
        col.prop(self, "checkpoint")
        row = col.row()
        row.prop(self, "threshold")
        row.prop(self, "smoothing")


def get_prefs(context=None):
    """The add-on preferences, or :data:`DEFAULTS` when the add-on is registered without them."""
    context = context or bpy.context
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon is not None and addon.preferences is not None else DEFAULTS


classes = (DAHYF_AP_preferences,)


register, unregister = bpy.utils.register_classes_factory(classes)
