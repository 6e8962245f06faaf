"""Turning take rows into scene data: rigs, actions, camera, timing — and undoing it on failure.

A :class:`TakeSession` is fed rows (a whole imported take, or the chunks of a running capture)
on the main thread. It creates each hand's rig the first time that track appears, keys its rows
with a :class:`.keying.TrackKeyer`, and sets up the preview camera on the first rows. Nothing
is created before rows arrive, and :meth:`rollback` removes everything it made and restores the
scene settings, so a failed or empty capture leaves the scene unchanged.
"""
from __future__ import annotations

import os
import re
from contextlib import contextmanager

import bpy
import numpy as np

from . import coords, engine_api, keying, preview, rig

SIDE_LETTER = {"right": "R", "left": "L"}


def next_take_number(video_stem: str) -> int:
    """1 + the highest take number of existing actions named ``<video_stem>.takeNNN.*``."""
    pat = re.compile(re.escape(video_stem) + r"\.take(\d+)\b")
    nums = [int(m.group(1)) for a in bpy.data.actions if (m := pat.match(a.name))]
    return max(nums, default=0) + 1


#: The ``bpy.data`` collections a session creates datablocks in.
CREATED_KINDS = ("objects", "cameras", "movieclips", "meshes", "armatures", "actions", "materials", "collections")


@contextmanager
def recording_new_datablocks(created: list):
    """Append ``(bpy.data collection name, datablock)`` to ``created`` for each datablock made inside
    the ``with`` block, also when it raises half-way (so :meth:`TakeSession.rollback` finds them)."""
    before = {kind: {b.as_pointer() for b in getattr(bpy.data, kind)} for kind in CREATED_KINDS}
    try:
        yield
    finally:
        for kind in CREATED_KINDS:
            created.extend((kind, b) for b in getattr(bpy.data, kind) if b.as_pointer() not in before[kind])


class TakeSession:
    """Applies take rows to the scene of ``context``.

    Parameters
    ----------
    context : bpy.types.Context (main thread only).
    prefs : add-on preferences (hand model choice).
    source : video path (names the take, and the camera background when ``video_background``).
    key_location : key the wrist translation (else the hands stay at their rest positions).
    """

    def __init__(self, context, prefs, source: str, key_location: bool = True, video_background: bool = True):
        self.context = context
        self.scene = context.scene
        self.prefs = prefs
        self.source = source
        self.stem = os.path.splitext(os.path.basename(source))[0] or "take"
        self.take_number = next_take_number(self.stem)
        self.take_name = f"{self.stem}.take{self.take_number:03d}"
        self.key_location = key_location
        self.video_background = video_background
        self.keyers: dict[int, keying.TrackKeyer] = {}
        self.rigs: dict[int, tuple] = {}
        self.camera = None
        self.collection = None
        self.origin = np.zeros(3)  # world position of the camera and the hands (see preview.capture_origin)
        self._state = preview.SceneState.save(self.scene)
        self._hands: dict[str, object] = {}
        self._created: list = []  # (collection name, datablock) in creation order
        self.first_frame = None
        self.last_frame = None

    # --- feeding -----------------------------------------------------------------------------------
    def hand_model(self, side: str):
        if side not in self._hands:
            self._hands[side] = engine_api.load_hand(self.prefs, side)
        return self._hands[side]

    def add_rows(self, rows: engine_api.Rows) -> int:
        """Key a batch of rows (any tracks, any order); returns the number of rows keyed."""
        if rows.num_rows == 0:
            return 0
        if self.camera is None:
            self._setup_preview(rows)
        for t in np.unique(rows.track).tolist():
            part = rows.select(t)
            side = part.handedness[t] if t < len(part.handedness) else "right"
            if t not in self.keyers:
                self._add_track(t, side, part)
            self.keyers[t].append(part.frame + coords.FRAME_OFFSET, part.pose, part.transl,
                                  part.confidence, part.filled)
        lo, hi = int(rows.frame.min()), int(rows.frame.max())
        self.first_frame = lo if self.first_frame is None else min(self.first_frame, lo)
        self.last_frame = hi if self.last_frame is None else max(self.last_frame, hi)
        preview.set_scene_timing(self.scene, rows.fps, self.first_frame, self.last_frame)
        return rows.num_rows

    def _setup_preview(self, rows: engine_api.Rows):
        with recording_new_datablocks(self._created):
            self.collection = bpy.data.collections.new(f"DaHyF {self.take_name}")
            self.scene.collection.children.link(self.collection)
            video = self.source if (self.video_background and os.path.isfile(self.source)) else None
            depth = max(preview.MIN_CLIP_END_M, 2.0 * float(np.max(rows.transl[:, 2], initial=0.0)))
            self.origin = preview.capture_origin(self.context, rows.image_size, rows.focal, depth)
            self.camera = preview.add_capture_camera(self.context, f"{self.take_name} camera", rows.image_size,
                                                     rows.focal, video, self.collection, location=self.origin,
                                                     clip_end_m=depth)
        preview.view_through_camera(self.context)

    def _add_track(self, track: int, side: str, rows: engine_api.Rows):
        hand = self.hand_model(side)
        betas = np.median(rows.betas, axis=0)
        name = f"{self.take_name} hand {SIDE_LETTER.get(side, side)}{track}"
        with recording_new_datablocks(self._created):
            arm_obj, mesh_obj = rig.build_hand_rig(self.context, hand, side, betas, name=name,
                                                   collection=self.collection, location=tuple(self.origin))
            arm_obj[rig.TAKE_PROP] = self.take_name
            arm_obj[rig.TRACK_PROP] = int(track)
            arm_obj[rig.SOURCE_PROP] = self.source
            keyer = keying.TrackKeyer(arm_obj, f"{self.take_name}.{side}{track}", _bone_names(),
                                      rig.bone_rest_quaternions(arm_obj), key_location=self.key_location,
                                      visibility=True)
        self.keyers[track] = keyer
        self.rigs[track] = (arm_obj, mesh_obj)

    def flush(self) -> None:
        """Write every keyer's pending keys (call once the rows are all in)."""
        for keyer in self.keyers.values():
            keyer.flush()

    # --- results -----------------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        """Frames keyed, summed over the hands."""
        return sum(k.num_frames for k in self.keyers.values())

    @property
    def armatures(self) -> list:
        return [self.rigs[t][0] for t in sorted(self.rigs)]

    def rollback(self) -> None:
        """Remove everything this session created and restore the scene settings.

        Objects go first (each object is recorded before its data, so plain reverse order removed
        the data first): removing the camera data, with its video background, while the camera
        object still used it crashed Blender (bpy 5.0.1).
        """
        created = list(reversed(self._created))
        for coll_name, block in [c for c in created if c[0] == "objects"] + [c for c in created if c[0] != "objects"]:
            try:
                getattr(bpy.data, coll_name).remove(block)
            except (ReferenceError, RuntimeError):
                pass
        self._created.clear()
        self.keyers.clear()
        self.rigs.clear()
        self.camera = None
        self._state.restore(self.scene)


def _bone_names():
    from dahyf.hand.tables import BONE_NAMES

    return BONE_NAMES
