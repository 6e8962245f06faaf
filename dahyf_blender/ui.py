"""The DaHyF sidebar panel of the 3D viewport."""
from __future__ import annotations

import bpy


class SidebarPanel:
    """Where every DaHyF panel lives: the 3D viewport's sidebar (N), tab DaHyF."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "DaHyF"


def menu_entry_factory(classes, menu: str, draw):
    """``(register, unregister)`` of a module that adds one entry to a Blender menu.

    ``register`` registers ``classes`` (in order) and appends ``draw`` (``draw(self, context)``, the
    entry) to ``bpy.types.<menu>``; ``unregister`` removes the entry, then the classes.
    """
    register_classes, unregister_classes = bpy.utils.register_classes_factory(classes)

    def register():
        register_classes()
        getattr(bpy.types, menu).append(draw)

    def unregister():
        getattr(bpy.types, menu).remove(draw)
        unregister_classes()

    return register, unregister


class DAHYF_PT_capture(SidebarPanel, bpy.types.Panel):
    bl_label = "Capture from Video"
    bl_idname = "DAHYF_PT_capture"

    def draw(self, context):
        s = context.scene.dahyf
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        layout.prop(s, "video")
        layout.prop(s, "hands", expand=True)
        row = layout.row(heading="Frame range")
        row.prop(s, "use_frame_range", text="")
        sub = row.row(align=True)
        sub.active = s.use_frame_range
        sub.prop(s, "frame_start")
        sub.prop(s, "frame_end")
        layout.prop(s, "threshold")
        layout.prop(s, "smoothing")
        layout.prop(s, "key_location")
        layout.prop(s, "lens_mm")
        layout.prop(s, "target")
        if s.target == "ARMATURE":
            layout.prop(s, "target_armature")
            layout.prop(s, "retarget_preset")
        draw_capture_button(layout)


def draw_capture_button(layout) -> None:
    """The Capture button, or while a capture runs its progress bar and a Stop button."""
    from .ops_capture import running_captures

    running = running_captures()
    col = layout.column()
    col.scale_y = 1.4
    if not running:
        col.operator("dahyf.capture_video", text="Capture from video", icon="REC")
        return
    run = running[0]
    row = col.row(align=True)
    row.progress(factor=run.job.progress, type="BAR", text=run.text)
    row.operator("dahyf.capture_stop", text="Stop", icon="CANCEL")


class DAHYF_PT_tools(SidebarPanel, bpy.types.Panel):
    bl_label = "Rig and Takes"
    bl_idname = "DAHYF_PT_tools"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        row = self.layout.row(align=True)
        row.operator("dahyf.add_hand_rig", text="Right hand").side = "RIGHT"
        row.operator("dahyf.add_hand_rig", text="Left hand").side = "LEFT"
        self.layout.operator("dahyf.import_take", icon="IMPORT")


classes = (DAHYF_PT_capture, DAHYF_PT_tools)


register, unregister = bpy.utils.register_classes_factory(classes)
