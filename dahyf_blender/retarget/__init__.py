"""Retarget a captured hand take onto the artist's own rig (DESIGN.md §5, issues 6 and 12).

The source is any armature with MANO bone names (a DaHyF hand rig); the target is any armature
whose hands a preset (``rigs/*.toml``) or automatic matching finds. Each target finger segment is
made to point where the source's does in its own hand frame (pose matching through both rigs'
rest geometry, :mod:`rigs.handframe`), captured fingertip contacts are kept (:mod:`rigs.contacts`)
and, as an option, the hand bone turns as the captured hand does. Modules:

- :mod:`.matching` — which bones play the MANO hand on each armature;
- :mod:`.plan` — pair both rigs' bones, measure their rest geometry once (:func:`make_plan`);
- :mod:`.apply` — compute target pose channels per frame, bake them into a new Action
  (:func:`bake`, :func:`retarget_objects`) or set them now (:func:`apply_current_pose`, live use;
  = :func:`read_source` → :func:`solve` → :func:`write_target`, the solve free of Blender data);
- :mod:`.live` — a constraint-driven live preview;
- :mod:`.ui` — the Retarget panel, its settings and operators.
"""
from __future__ import annotations

from ._rigs import match, presets
from .apply import (SOURCE_PROP, apply_current_pose, bake, read_source, retarget_objects, solve, source_rotations,
                    write_target)
from .live import LIVE_TAG, add_live_preview, remove_live_preview
from .matching import (RetargetError, armature_names, match_armature, pick_target_hand, source_hand,
                       user_preset_dir)
from .plan import RetargetOptions, RetargetPlan, make_plan
from .ui import panel_options, register, unregister

__all__ = ["LIVE_TAG", "SOURCE_PROP", "RetargetError", "RetargetOptions", "RetargetPlan", "add_live_preview",
           "apply_current_pose", "armature_names", "bake", "make_plan", "match", "match_armature", "panel_options",
           "pick_target_hand", "presets", "read_source", "register", "remove_live_preview", "retarget_objects",
           "solve", "source_hand", "source_rotations", "unregister", "user_preset_dir", "write_target"]
