"""A character follows the live hands (:mod:`.live`) through the retargeter: its live-preview
constraints for same-side hands, its solve on a worker thread (:class:`Driver`) for mirrored ones.
"""
from __future__ import annotations

import bpy

from . import engine_api


def drive(context, rig_names: list[str], target, preset: str = "AUTO"):
    """Make ``target`` follow the live rigs ``rig_names`` (track order) through the retargeter.

    A live hand and a target hand of the same side are tied by the retargeter's live-preview
    constraints (Blender evaluates them; no Python per tick). A mirrored pair (a left live hand on
    a right-only target), which constraints cannot replay, gets a :class:`Driver`. A hand the
    target cannot take is left out, with a note.

    Returns
    -------
    ({track: Driver}, name of the constrained armature or None, notes)

    Raises
    ------
    engine_api.UserError
        No live hand can drive ``target``.
    """
    from . import retarget

    drivers, notes, taken, constrained = {}, [], set(), None
    for t, name in enumerate(rig_names):
        try:
            plan = retarget.make_plan(bpy.data.objects[name], target, preset or "AUTO",
                                      options=retarget.RetargetOptions(contacts=False))
        except retarget.RetargetError as exc:
            notes.append(f"{name} does not drive {target.name}: {exc}")
            continue
        if plan.tgt.side in taken:   # one live hand per target hand (the other is mirrored onto it)
            notes.append(f"{name} does not drive {target.name}: its only hand follows the other live hand.")
            continue
        taken.add(plan.tgt.side)
        notes += plan.notes
        if plan.mirrored:
            drivers[t] = Driver(plan)
        else:
            retarget.add_live_preview(plan, context)
            constrained = target.name
    if not taken:
        raise engine_api.UserError(" ".join(notes) or f"{target.name} cannot be driven.")
    return drivers, constrained, notes


def undrive(name: str | None) -> None:
    """Remove the live-preview constraints from the armature ``name`` (it keeps its last pose)."""
    from . import retarget

    target = bpy.data.objects.get(name) if name else None
    if target is not None:
        retarget.remove_live_preview(target)


class Driver:
    """Drives one (mirrored) hand of an armature from a live rig with the retargeter, off the UI thread.

    The retargeter's :func:`.retarget.apply_current_pose` is :func:`.retarget.read_source` (the live
    rig's pose channels, ~0.3 ms), :func:`.retarget.solve` (numpy, 3 ms without the contact pass on 2
    shared cores) and :func:`.retarget.write_target` (~1 ms); here the solve runs on a worker thread
    and the result is set at the next tick, one tick later. The
    solve still takes the GIL in small steps, so the UI thread's ticks get slower (BENCHMARKS.md):
    same-side pairs use the live-preview constraints instead.
    """

    def __init__(self, plan):
        from concurrent.futures import ThreadPoolExecutor

        self.plan = plan
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dahyf-live-retarget")
        self._job = None
        self._stale = False   # the live pose changed while a solve was running

    def pose_changed(self) -> None:
        """(main thread) The live rig has a new pose: solve for it (or after the running solve)."""
        if self._job is None:
            self._submit()
        else:
            self._stale = True

    def _submit(self) -> None:
        from . import retarget

        plan = self.plan
        try:
            S = retarget.read_source(plan)
        except ReferenceError:   # the live rig or the target was deleted
            return
        self._job = self._pool.submit(retarget.solve, plan, S, plan.wrist_reference)

    def poll(self) -> None:
        """(main thread) Set the target's pose channels of a finished solve."""
        from . import retarget

        if self._job is None or not self._job.done():
            return
        job, self._job = self._job, None
        try:
            retarget.write_target(self.plan, job.result())
        except ReferenceError:
            return
        if self._stale:
            self._stale = False
            self._submit()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._job = None
