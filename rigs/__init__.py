"""Retarget presets (one TOML file per rig family) and their loader/matcher; no bpy.

``rigs.presets``: load presets, match a rig's bone names and hierarchy to a preset or by automatic
finger-chain detection. ``rigs.handframe``: hand frames and the rotation transfer (numpy).
"""
