"""The Retarget panel, its settings and operators (bake, live preview, detect, save as preset)."""
from __future__ import annotations

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty,
                       StringProperty)

from dahyf.hand.tables import JOINT_NAMES

from ..props import is_armature, scene_settings_factory
from ..ui import SidebarPanel
from ._rigs import match as match_mod
from ._rigs import presets
from .apply import bake
from .live import add_live_preview, remove_live_preview
from .matching import (SIDE_WORD, RetargetError, extra_dirs, match_armature, pick_target_hand, source_hand,
                       user_preset_dir)
from .plan import RetargetOptions, make_plan

SIDE_ITEMS = (("AUTO", "Auto", "Same side as the source when the target has it, else the other hand (mirrored)"),
              ("RIGHT", "Right", "Right hand"), ("LEFT", "Left", "Left hand"))


def _preset_items(self, context):
    items = [("AUTO", "Auto", "Best-fitting preset, else automatic matching by names and hierarchy"),
             ("auto", "Automatic matching", "Match finger chains by names and hierarchy, ignoring presets")]
    skipped: list[str] = []
    try:
        for p in presets.load_presets(extra_dirs(), notes=skipped).values():
            items.append((p.name, p.label, p.description))
    except presets.PresetError as exc:  # a broken built-in preset: a bug, shown rather than hidden
        items.append(("ERROR", f"(preset error: {exc})", str(exc)))
    _preset_items.cache = items  # Blender needs the strings kept alive
    _preset_items.skipped = skipped  # shown in the panel
    return items


class DAHYF_PG_bone_map(bpy.types.PropertyGroup):
    joint: StringProperty(name="MANO joint")
    bone: StringProperty(name="Bone", description="Target bone for this MANO joint (empty: none)")


class DAHYF_PG_retarget(bpy.types.PropertyGroup):
    source: PointerProperty(name="Source", type=bpy.types.Object, poll=is_armature,
                            description="Hand armature with the take (MANO bone names)")
    target: PointerProperty(name="Target", type=bpy.types.Object, poll=is_armature,
                            description="Your character's armature")
    preset: EnumProperty(name="Preset", items=_preset_items)
    target_side: EnumProperty(name="Target hand", items=SIDE_ITEMS, default="AUTO")
    side: StringProperty(name="Mapped side", default="R")
    wrist: StringProperty(name="Wrist", description="Target hand bone (the fingers' parent)")
    mapping: CollectionProperty(type=DAHYF_PG_bone_map)
    use_mapping: BoolProperty(name="Use this mapping", default=False,
                              description="Retarget with the mapping shown here instead of the preset")
    new_preset_name: StringProperty(name="Preset name", default="my_rig")
    use_contacts: BoolProperty(name="Keep contacts", default=True,
                               description="Where the captured fingertips touch (pinch, tips on the palm), keep "
                                           "them touching on your rig")
    wrist_blend: FloatProperty(name="Wrist", default=0.0, min=0.0, max=1.0, subtype="FACTOR",
                               description="Turn your rig's hand bone as the captured hand turns (relative to the "
                                           "reference frame); 0 leaves the hand bone alone")
    wrist_reference: IntProperty(name="Reference frame", default=-1,
                                 description="Frame of the take whose hand orientation means 'no turn' (-1: first)")


def panel_options(context) -> RetargetOptions:
    """The Retarget panel's options (defaults when the panel's settings are not registered)."""
    s = getattr(context.scene, "dahyf_retarget", None)
    if s is None:
        return RetargetOptions()
    return RetargetOptions(wrist=s.wrist_blend, wrist_reference=None if s.wrist_reference < 0 else s.wrist_reference,
                           contacts=s.use_contacts)


def _panel_match(s) -> match_mod.RigMatch:
    joints = {m.joint: m.bone for m in s.mapping if m.bone}
    hand = match_mod.HandMatch(s.side, s.wrist or None, joints)
    return match_mod.RigMatch("panel", {s.side: hand})


class DAHYF_OT_retarget(bpy.types.Operator):
    """Retarget a captured hand take onto an armature's hand (bake a new Action, or live preview)"""

    bl_idname = "dahyf.retarget"
    bl_label = "Retarget Hand"
    bl_options = {"REGISTER", "UNDO"}

    source: StringProperty(name="Source", description="Name of the hand armature object with the take")
    target: StringProperty(name="Target", description="Name of the armature object to retarget onto")
    preset: StringProperty(name="Preset", default="AUTO", description="Preset name, 'AUTO', or 'auto' (no presets)")
    source_side: EnumProperty(name="Source hand", items=SIDE_ITEMS, default="AUTO")
    target_side: EnumProperty(name="Target hand", items=SIDE_ITEMS, default="AUTO")
    mode: EnumProperty(name="Mode", default="BAKE", items=(
        ("BAKE", "Bake", "Key the target's finger bones into a new Action"),
        ("LIVE", "Live preview", "Drive the target's finger bones with constraints (no keys)"),
        ("CLEAR", "Remove preview", "Remove the live-preview constraints")))
    frame_start: IntProperty(name="Start", default=-1, description="First frame (-1: scene start)")
    frame_end: IntProperty(name="End", default=-1, description="Last frame (-1: scene end)")
    use_panel_mapping: BoolProperty(name="Use panel mapping", default=False)
    contacts: BoolProperty(name="Keep contacts", default=True, description="Keep captured fingertip contacts")
    wrist: FloatProperty(name="Wrist", default=0.0, min=0.0, max=1.0,
                         description="Blend of the captured hand's turn keyed on the hand bone (0: off)")
    wrist_reference: IntProperty(name="Reference frame", default=-1,
                                 description="Source frame meaning 'no turn' (-1: the first frame baked)")

    def execute(self, context):
        source = bpy.data.objects.get(self.source)
        target = bpy.data.objects.get(self.target)
        if target is None:
            self.report({"ERROR"}, f"No object named {self.target!r}: set target to your armature's object name")
            return {"CANCELLED"}
        if self.mode == "CLEAR":
            remove_live_preview(target)
            return {"FINISHED"}
        if source is None:
            self.report({"ERROR"}, f"No object named {self.source!r}: set source to the captured hand armature")
            return {"CANCELLED"}
        if context.object is not None and context.object.mode != "OBJECT":
            bpy.ops.object.mode_set(mode="OBJECT")
        options = RetargetOptions(wrist=self.wrist, contacts=self.contacts,
                                  wrist_reference=None if self.wrist_reference < 0 else self.wrist_reference)
        try:
            match = _panel_match(context.scene.dahyf_retarget) if self.use_panel_mapping else None
            plan = make_plan(source, target, self.preset, self.source_side, self.target_side, match=match,
                             options=options)
            if self.mode == "LIVE":
                add_live_preview(plan, context)
                self.report({"INFO"}, f"Live preview: {len(plan.pairs)} finger bones of {target.name} follow {source.name}")
            else:
                start = context.scene.frame_start if self.frame_start < 0 else self.frame_start
                end = context.scene.frame_end if self.frame_end < 0 else self.frame_end
                action = bake(plan, context, start, end)
                self.report({"INFO"}, f"Retargeted {len(plan.pairs)} finger bones onto {target.name} "
                                      f"({SIDE_WORD[plan.tgt.side]} hand), frames {start}-{end}: Action {action.name!r}")
        except (RetargetError, presets.PresetError, ValueError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        for note in plan.notes:
            self.report({"WARNING"}, note)
        return {"FINISHED"}


class DAHYF_OT_retarget_detect(bpy.types.Operator):
    """Match the target armature's hand bones and show the mapping in the panel"""

    bl_idname = "dahyf.retarget_detect"
    bl_label = "Detect Mapping"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        s = context.scene.dahyf_retarget
        if s.target is None:
            self.report({"ERROR"}, "Pick a target armature first")
            return {"CANCELLED"}
        try:
            match = match_armature(s.target, s.preset)
            src_side = source_hand(s.source).side if s.source is not None else "R"
            hand, _, notes = pick_target_hand(match, src_side, s.target_side)
        except (RetargetError, presets.PresetError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        s.mapping.clear()
        s.side, s.wrist = hand.side, hand.wrist or ""
        for name in JOINT_NAMES[1:]:
            row = s.mapping.add()
            row.joint, row.bone = name, hand.joints.get(name, "")
        s.use_mapping = True
        for line in (match.report().splitlines() + notes):
            self.report({"INFO"}, line)
        return {"FINISHED"}


class DAHYF_OT_retarget_save_preset(bpy.types.Operator):
    """Save the mapping shown in the panel as a new retarget preset in your user folder"""

    bl_idname = "dahyf.retarget_save_preset"
    bl_label = "Save as Preset"

    def execute(self, context):
        s = context.scene.dahyf_retarget
        if not len(s.mapping):
            self.report({"ERROR"}, "Detect a mapping first")
            return {"CANCELLED"}
        match = _panel_match(s)
        other = "L" if s.side == "R" else "R"
        if s.target is not None:  # add the other hand by swapping side tokens, when those bones exist
            hand = match.hands[s.side]
            names = set(s.target.data.bones.keys())
            swapped = {k: bpy.utils.flip_name(v) for k, v in hand.joints.items()}
            wrist = bpy.utils.flip_name(hand.wrist or "")
            if swapped != hand.joints and all(v in names for v in swapped.values()) and wrist in names:
                match.hands[other] = match_mod.HandMatch(other, wrist, swapped)
        try:
            path = presets.save_preset(match, s.new_preset_name, user_preset_dir(create=True))
        except (presets.PresetError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Saved retarget preset {s.new_preset_name!r} to {path}")
        return {"FINISHED"}


class DAHYF_PT_retarget(SidebarPanel, bpy.types.Panel):
    bl_label = "Retarget"
    bl_idname = "DAHYF_PT_retarget"
    bl_options = {"DEFAULT_CLOSED"}
    bl_order = 100  # below the capture panels

    def draw(self, context):
        s = context.scene.dahyf_retarget
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        for prop in ("source", "target", "preset", "target_side", "use_contacts", "wrist_blend"):
            layout.prop(s, prop)
            if prop == "preset":
                for note in getattr(_preset_items, "skipped", ()):
                    layout.label(text=note, icon="ERROR")
        if s.wrist_blend > 0:
            layout.prop(s, "wrist_reference")
        layout.operator("dahyf.retarget_detect", icon="VIEWZOOM")
        if len(s.mapping) and s.target is not None:
            box = layout.box()
            box.prop(s, "use_mapping")
            box.prop_search(s, "wrist", s.target.data, "bones", text="wrist")
            for row in s.mapping:
                box.prop_search(row, "bone", s.target.data, "bones", text=row.joint)
            r = box.row(align=True)
            r.prop(s, "new_preset_name", text="")
            r.operator("dahyf.retarget_save_preset", icon="FILE_TICK")
        ok = s.source is not None and s.target is not None
        col = layout.column(align=True)
        col.enabled = ok
        for mode, text, icon in (("BAKE", "Retarget (bake)", "ACTION"), ("LIVE", "Live preview", "CONSTRAINT"),
                                 ("CLEAR", "Remove preview", "X")):
            op = col.operator("dahyf.retarget", text=text, icon=icon)
            if ok:
                op.source, op.target = s.source.name, s.target.name
            op.preset = s.preset
            op.target_side = s.target_side
            op.mode = mode
            op.use_panel_mapping = s.use_mapping
            op.contacts, op.wrist, op.wrist_reference = s.use_contacts, s.wrist_blend, s.wrist_reference


classes = (DAHYF_PG_bone_map, DAHYF_PG_retarget, DAHYF_OT_retarget, DAHYF_OT_retarget_detect,
           DAHYF_OT_retarget_save_preset, DAHYF_PT_retarget)

register, unregister = scene_settings_factory(classes, "dahyf_retarget", DAHYF_PG_retarget)
