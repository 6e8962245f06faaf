"""The ``rigs`` package (presets and hand-matching maths): shipped inside the extension as
``dahyf_blender.rigs``, imported from the repository root in development and tests."""
from __future__ import annotations

try:  # inside the built extension, build_addon.py ships rigs/ as a subpackage
    from ..rigs import automatch, contacts, handframe, match, names, presets
except ImportError:  # running from the repository (tests, development)
    from rigs import automatch, contacts, handframe, match, names, presets

__all__ = ["automatch", "contacts", "handframe", "match", "names", "presets"]
