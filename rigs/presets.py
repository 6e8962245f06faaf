"""Retarget presets: one TOML file per rig family, read and written here (no bpy).

A preset names, for each hand of a rig family, the bone that plays each of the 15 MANO finger
joints (``index1`` … ``thumb3``, names from :data:`dahyf.hand.tables.JOINT_NAMES`), the wrist
(the hand bone the fingers hang from), and optionally metacarpals and fingertip leaves (present
in the rig, never rotated). Matching a rig against presets is :mod:`rigs.match`.

Preset format (see ``rigify.toml`` for a commented example)::

    name = "mixamo"                # unique id; the file name without .toml
    label = "Mixamo"
    sides = { R = "Right", L = "Left" }   # what {S} becomes in the templates below
    wrist = "mixamorig:{S}Hand"    # a string, or a list of alternatives (first one present wins)
    arm = [...]                    # published parents of the wrist, root first (documentation/tests)
    wrist_controls = [...]         # optional: bones keyed to turn the hand (default: the wrist)
    [fingers]                      # per finger, 3 entries for MANO joints 1, 2, 3 ("" = no such bone)
    index = ["mixamorig:{S}HandIndex1", "mixamorig:{S}HandIndex2", "mixamorig:{S}HandIndex3"]
    [metacarpals]                  # optional, per long finger
    [tips]                         # optional leaf bones past the last phalanx (never rotated)

A preset saved from the panel spells each hand out instead: ``[hands.R]`` / ``[hands.L]`` tables
with ``wrist``, ``thumb`` … ``pinky`` (3-entry lists), and optional ``metacarpals``/``tips`` tables.
Names that carry no side (WebXR joint sets: ``index-finger-phalanx-proximal``) use
``sides = { R = "", L = "" }``; the matcher then tells the side from the hand's shape.

Every problem with a file is a :class:`PresetError` that names the file; a broken file in a user
folder is skipped with a note (:func:`load_presets`), never fatal.
"""
from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from dahyf.errors import DaHyFUserError
from dahyf.fileio import atomic_path
from dahyf.hand.tables import FINGER_JOINTS, FINGERS, JOINT_NAMES

#: Folder of the built-in presets (this package).
PRESET_DIR = Path(__file__).resolve().parent
SIDES = ("R", "L")
#: The 15 MANO finger joints, MANO order.
FINGER_JOINT_NAMES: tuple[str, ...] = JOINT_NAMES[1:]
#: The long fingers (those that may have a separate metacarpal bone).
LONG_FINGERS: tuple[str, ...] = tuple(f for f in FINGERS if f != "thumb")
#: Largest preset file read (bytes); real presets are about 1 KB.
MAX_PRESET_BYTES = 256 * 1024
#: Longest name, label, description or bone name accepted (characters).
MAX_TEXT = 1000


class PresetError(DaHyFUserError, ValueError):
    """A preset file is malformed; the message names the file and what to fix."""


@dataclass(frozen=True)
class HandSpec:
    """Bone names of one hand in a preset. Each entry is a tuple of alternatives ('' = none)."""

    wrist: tuple[str, ...]
    fingers: dict[str, tuple[tuple[str, ...], ...]]  # finger -> 3 × alternatives
    metacarpals: dict[str, tuple[str, ...]] = field(default_factory=dict)
    tips: dict[str, tuple[str, ...]] = field(default_factory=dict)
    arm: tuple[str, ...] = ()
    wrist_controls: tuple[str, ...] = ()


@dataclass(frozen=True)
class Preset:
    """A rig family: bone names of each hand, plus optional per-rig axis correction.

    ``axis_correction_deg`` : (3,) XYZ Euler angles in degrees, applied to the transferred finger
    rotations in the hand frame (see :mod:`rigs.handframe`); zero for all built-in presets.
    ``follow_prefix`` : prefix of the deform bones that follow the mapped (control) bones, if any.
    """

    name: str
    label: str
    description: str
    hands: dict[str, HandSpec]
    axis_correction_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    follow_prefix: str = ""
    path: Path | None = None


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------

def _text(value, where: str, allow_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise PresetError(f"{where}: expected text, got {type(value).__name__} {value!r:.60}")
    if len(value) > MAX_TEXT or (not allow_empty and not value):
        raise PresetError(f"{where}: expected 1 to {MAX_TEXT} characters, got {len(value)}")
    return value


def _table(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise PresetError(f"{where}: expected a table, got {type(value).__name__} {value!r:.60}")
    return value


def _alts(value, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (_text(value, where),)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(_text(v, where) for v in value)
    raise PresetError(f"{where}: expected a bone name or a list of alternative names, got {value!r:.80}")


def _finger_entries(value, where: str) -> tuple[tuple[str, ...], ...]:
    if not isinstance(value, list) or len(value) != 3:
        raise PresetError(f"{where}: expected 3 entries (MANO joints 1, 2, 3; \"\" for a missing bone), "
                          f"got {value!r:.80}")
    return tuple(_alts(v, f"{where}[{i}]") for i, v in enumerate(value))


def _per_finger(value, where: str, sub) -> dict[str, tuple[str, ...]]:
    out = {}
    for k, v in _table(value, where).items():
        if k not in FINGERS:
            raise PresetError(f"{where}: unknown finger {k!r}; fingers are {', '.join(FINGERS)}")
        out[k] = sub(_alts(v, f"{where}.{k}"))
    return out


def _hand_spec(table: dict, where: str, subst=lambda s: s) -> HandSpec:
    def sub(alts):
        return tuple(subst(a) for a in alts)

    table = _table(table, where)
    fingers_table = _table(table.get("fingers", table), f"{where}.fingers")
    fingers = {}
    for finger in FINGERS:
        if finger not in fingers_table:
            raise PresetError(f"{where}: missing finger {finger!r} (one list of 3 bone names per finger)")
        fingers[finger] = tuple(sub(e) for e in _finger_entries(fingers_table[finger], f"{where}.{finger}"))
    if "wrist" not in table:
        raise PresetError(f"{where}: missing 'wrist' (the hand bone the fingers hang from)")
    meta = _per_finger(table.get("metacarpals", {}), f"{where}.metacarpals", sub)
    tips = _per_finger(table.get("tips", {}), f"{where}.tips", sub)
    lists = {}
    for key in ("arm", "wrist_controls"):
        value = table.get(key, [])
        if not isinstance(value, list):
            raise PresetError(f"{where}.{key}: expected a list of bone names, got {value!r:.60}")
        lists[key] = tuple(subst(_text(a, f"{where}.{key}")) for a in value)
    return HandSpec(sub(_alts(table["wrist"], f"{where}.wrist")), fingers, meta, tips, lists["arm"],
                    lists["wrist_controls"])


def _correction(value, where: str) -> tuple[float, float, float]:
    if (not isinstance(value, list) or len(value) != 3
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            or not all(math.isfinite(v) for v in value)):
        raise PresetError(f"{where}: axis_correction_deg must be 3 finite Euler angles in degrees, got {value!r:.60}")
    return tuple(float(v) for v in value)


def _read_text(path: Path) -> str:
    """The file's text: a regular file, at most MAX_PRESET_BYTES, UTF-8."""
    if not path.is_file():
        raise PresetError(f"{path}: not a regular file; remove it from the presets folder")
    with open(path, "rb") as fh:
        raw = fh.read(MAX_PRESET_BYTES + 1)
    if len(raw) > MAX_PRESET_BYTES:
        raise PresetError(f"{path}: larger than {MAX_PRESET_BYTES // 1024} KiB; a retarget preset is a few KiB")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PresetError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from exc


def _parse(data: dict, path: Path) -> Preset:
    where = str(path)
    name = _text(data.get("name", path.stem), f"{where}: name", allow_empty=False)
    if len(name) > 64 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise PresetError(f"{where}: name {name!r:.80}: use at most 64 printable characters")
    hands: dict[str, HandSpec] = {}
    if "hands" in data:
        for side, table in _table(data["hands"], f"{where}: hands").items():
            if side not in SIDES:
                raise PresetError(f"{where}: hands.{side}: sides are 'R' and 'L'")
            hands[side] = _hand_spec(table, f"{where}: hands.{side}")
    else:
        sides = data.get("sides")
        if not isinstance(sides, dict) or not sides or not set(sides) <= set(SIDES):
            raise PresetError(f"{where}: needs sides = {{ R = \"...\", L = \"...\" }} (what {{S}} becomes per hand) "
                              "or explicit [hands.R]/[hands.L] tables")
        for side, token in sides.items():
            token = _text(token, f"{where}: sides.{side}")
            hands[side] = _hand_spec(data, where, subst=lambda s, t=token: s.replace("{S}", t))
    corr = _correction(data.get("axis_correction_deg", [0.0, 0.0, 0.0]), where)
    return Preset(name=name, label=_text(data.get("label", name), f"{where}: label"),
                  description=_text(data.get("description", ""), f"{where}: description"), hands=hands,
                  axis_correction_deg=corr, follow_prefix=_text(data.get("follow_prefix", ""), f"{where}: follow_prefix"),
                  path=path)


def load_preset(path: str | Path) -> Preset:
    """Read one preset TOML file (format in the module docstring).

    Raises
    ------
    PresetError
        For anything wrong with the file (unreadable, not UTF-8, not TOML, too deeply nested, wrong
        types or shapes); the message names the file and what to fix.
    """
    path = Path(path)
    try:
        data = tomllib.loads(_read_text(path))
        return _parse(data, path)
    except PresetError:
        raise
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PresetError(f"{path}: cannot read retarget preset ({exc}); fix or delete the file") from exc
    except RecursionError as exc:
        raise PresetError(f"{path}: nested too deeply to be a retarget preset; fix or delete the file") from exc
    except (TypeError, ValueError, AttributeError, KeyError) as exc:  # a shape the checks above did not foresee
        raise PresetError(f"{path}: malformed retarget preset ({type(exc).__name__}: {exc}); "
                          "fix or delete the file") from exc


def load_presets(extra_dirs=(), notes: list[str] | None = None) -> dict[str, Preset]:
    """All presets: the built-in ones, then those in ``extra_dirs`` (a later file overrides by name).

    A user preset that cannot be read is skipped, and why is appended to ``notes`` (when given);
    a broken built-in preset raises :class:`PresetError` (a bug of this package).
    """
    presets: dict[str, Preset] = {}
    for path in sorted(PRESET_DIR.glob("*.toml")):
        preset = load_preset(path)
        presets[preset.name] = preset
    for folder in (Path(d) for d in extra_dirs):
        try:
            paths = sorted(p for p in folder.glob("*.toml") if not p.name.startswith(".")) if folder.is_dir() else []
        except OSError as exc:
            paths = []
            if notes is not None:
                notes.append(f"Skipped the user presets in {folder}: {exc}")
        for path in paths:
            try:
                preset = load_preset(path)
            except PresetError as exc:
                if notes is not None:
                    notes.append(f"Skipped a broken user preset: {exc}")
                continue
            presets[preset.name] = preset
    return presets


# --------------------------------------------------------------------------------------------
# Writing a (fixed) mapping as a new preset
# --------------------------------------------------------------------------------------------

_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_string(s: str) -> str:
    """A TOML basic string holding ``s`` exactly (quotes, backslashes and control characters escaped).

    Raises PresetError for text TOML cannot hold (lone surrogates, which are not Unicode scalar values).
    """
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        elif 0xD800 <= code <= 0xDFFF:
            raise PresetError(f"name {s!r} holds a lone surrogate (\\u{code:04X}); rename the bone to save it")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def preset_toml(match, name: str, label: str | None = None, description: str = "") -> str:
    """TOML text of a preset that reproduces ``match`` (a :class:`rigs.match.RigMatch`) exactly.

    The explicit [hands.R]/[hands.L] form is written.
    """
    if not re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", name or ""):
        raise PresetError(f"preset name {name!r}: use 1 to 64 letters, digits, '_' or '-'")
    out = [f"name = {toml_string(name)}", f"label = {toml_string(label or name)}",
           f"description = {toml_string(description or 'Saved from the DaHyF retarget panel.')}"]
    if any(match.axis_correction_deg):
        out.append("axis_correction_deg = [" + ", ".join(repr(float(v)) for v in match.axis_correction_deg) + "]")
    if match.follow_prefix:
        out.append(f"follow_prefix = {toml_string(match.follow_prefix)}")
    for side in SIDES:
        hand = match.hands.get(side)
        if hand is None or not hand.joints:
            continue
        out += ["", f"[hands.{side}]", f"wrist = {toml_string(hand.wrist or '')}"]
        if hand.wrist_controls:
            out.append("wrist_controls = [" + ", ".join(toml_string(c) for c in hand.wrist_controls) + "]")
        for finger in FINGERS:
            entries = [hand.joints.get(JOINT_NAMES[j], "") for j in FINGER_JOINTS[finger]]
            out.append(f"{finger} = [" + ", ".join(toml_string(e) for e in entries) + "]")
        for table, values in (("metacarpals", hand.metacarpals), ("tips", hand.tips)):
            if values:
                out += ["", f"[hands.{side}.{table}]"] + [f"{k} = {toml_string(v)}" for k, v in values.items()]
    return "\n".join(out) + "\n"


def _same_mapping(preset: Preset, match) -> bool:
    """Whether a preset read back names exactly the bones of ``match``."""
    for side, hand in match.hands.items():
        if not hand.joints:
            continue
        spec = preset.hands.get(side)
        if spec is None or spec.wrist != (hand.wrist or "",) or spec.wrist_controls != tuple(hand.wrist_controls):
            return False
        for finger in FINGERS:
            want = tuple((hand.joints.get(JOINT_NAMES[j], ""),) for j in FINGER_JOINTS[finger])
            if spec.fingers[finger] != want:
                return False
        if {k: v[0] for k, v in spec.metacarpals.items()} != hand.metacarpals or \
                {k: v[0] for k, v in spec.tips.items()} != hand.tips:
            return False
    return True


def save_preset(match, name: str, folder: str | Path, label: str | None = None, description: str = "") -> Path:
    """Write ``match`` as ``<folder>/<name>.toml`` atomically and return the path.

    The text is written to a hidden temporary file beside the target, read back and compared with
    ``match`` before it replaces the target; on any failure the temporary file is removed and an
    existing preset of that name is left as it was.
    """
    text = preset_toml(match, name, label, description)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    with atomic_path(path) as tmp:   # removed on any failure; the old preset stays
        tmp.write_text(text, encoding="utf-8", newline="")
        if not _same_mapping(load_preset(tmp), match):  # never leave a preset that reads back differently
            raise PresetError(f"{path}: the saved preset does not read back as the mapping shown; not saved")
    return path
