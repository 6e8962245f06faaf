"""Retarget presets, matching and the hand maths (rigs/), without Blender."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from dahyf.hand.tables import FINGER_JOINTS, FINGERS, JOINT_NAMES
from rigs import automatch, contacts, handframe, match, names, presets

FAMILIES = ("rigify", "mixamo", "unreal", "vrm", "autorigpro", "mpfb", "openxr")
PROPERTY = settings(max_examples=60, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def preset_rig(preset: presets.Preset, sides=("R", "L"), metacarpals=True, tips=True, arm=True):
    """Bone names + parent map of a rig built from a preset's published names and hierarchy."""
    parents: dict[str, str | None] = {"root": None}
    for side in sides:
        spec = preset.hands[side]
        parent = "root"
        if arm:
            for name in spec.arm:
                parents[name] = parent
                parent = name
        wrist = spec.wrist[0]
        parents[wrist] = parent
        for f in FINGERS:
            p = wrist
            if metacarpals and f in spec.metacarpals:
                parents[spec.metacarpals[f][0]] = wrist
                p = spec.metacarpals[f][0]
            for alts in spec.fingers[f]:
                if alts[0]:
                    parents[alts[0]] = p
                    p = alts[0]
            if tips and f in spec.tips:
                parents[spec.tips[f][0]] = p
    return list(parents), parents


@pytest.fixture(scope="module")
def all_presets():
    return presets.load_presets()


def toy_hand(side="R", curl_deg=0.0, finger_scale=1.0, heads_only=False):
    """A right (or mirrored left) hand skeleton in metres: wrist at 0, fingers along +x, palm towards +z.

    Returns {name: head}, {name: parent}, {name: tail} with WebXR-like names per finger
    ('index-1' … 'index-4' for metacarpal, proximal, intermediate, distal; thumb 'thumb-1' … '-3').
    """
    heads, parents, tails = {"wrist": np.zeros(3)}, {"wrist": None}, {"wrist": np.array([0.05, 0, 0])}
    knuckles = {"index": (0.09, -0.025), "middle": (0.095, 0.0), "ring": (0.09, 0.02), "pinky": (0.08, 0.038)}
    c = math.radians(curl_deg)
    for f, (x, y) in knuckles.items():
        p = np.array([0.01, y * 0.5, 0.0])
        pts = [p, np.array([x, y, 0.0])]
        d = np.array([1.0, 0.0, 0.0])
        for k, seg in enumerate((0.045, 0.027, 0.022)):
            ang = c * k
            d = np.array([math.cos(ang), 0.0, math.sin(ang)])  # curls towards the palm (+z)
            pts.append(pts[-1] + seg * finger_scale * d)
        for k in range(4):
            heads[f"{f}-{k + 1}"], tails[f"{f}-{k + 1}"] = pts[k], pts[k + 1]
            parents[f"{f}-{k + 1}"] = "wrist" if k == 0 else f"{f}-{k}"
    thumb = [np.array([0.02, -0.02, 0.01]), np.array([0.045, -0.045, 0.02]), np.array([0.065, -0.065, 0.025]),
             np.array([0.085, -0.08, 0.03])]
    for k in range(3):
        heads[f"thumb-{k + 1}"], tails[f"thumb-{k + 1}"] = thumb[k], thumb[k + 1]
        parents[f"thumb-{k + 1}"] = "wrist" if k == 0 else f"thumb-{k}"
    if side == "L":
        flip = np.array([1.0, 1.0, -1.0])  # mirror through the palm plane: a left hand
        heads = {k: v * flip for k, v in heads.items()}
        tails = {k: v * flip for k, v in tails.items()}
    return heads, parents, tails


# --------------------------------------------------------------------------------------------
# Presets and detection
# --------------------------------------------------------------------------------------------

def test_every_family_has_a_preset_with_both_hands(all_presets):
    assert set(FAMILIES) | {"webxr"} <= set(all_presets)
    for name in FAMILIES:
        p = all_presets[name]
        assert set(p.hands) == {"R", "L"}, name
        for side, spec in p.hands.items():
            bones = [a[0] for f in FINGERS for a in spec.fingers[f] if a[0]]
            assert len(bones) == 15 and len(set(bones)) == 15, (name, side)
            assert all(("{S}" not in n) for n in bones), "side token left in a name"
        r, l = (set(a[0] for f in FINGERS for a in p.hands[s].fingers[f]) for s in "RL")
        assert not r & l, f"{name}: left and right names collide"
    webxr = all_presets["webxr"]  # names that carry no side: both hands read the same
    assert webxr.hands["R"] == webxr.hands["L"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("mode", ["AUTO", "auto", "preset"])
def test_detection_finds_15_bones_per_hand(all_presets, family, mode):
    bones, parents = preset_rig(all_presets[family])
    m = match.detect(bones, parents, family if mode == "preset" else mode)
    if mode == "AUTO":
        assert m.preset == family, m.report()
    for side in "RL":
        spec, hand = all_presets[family].hands[side], m.hands[side]
        expected = {JOINT_NAMES[j]: spec.fingers[f][k][0] for f in FINGERS for k, j in enumerate(FINGER_JOINTS[f])}
        assert hand.joints == expected, (mode, m.report())
        assert hand.wrist == spec.wrist[0], (mode, hand.wrist)
        assert hand.usable and hand.fits_preset


@pytest.mark.parametrize("family", ["mixamo", "unreal", "openxr"])
def test_automatic_matching_sets_aside_metacarpals_and_end_bones(all_presets, family):
    bones, parents = preset_rig(all_presets[family])
    m = automatch.auto_match(bones, parents)
    spec = all_presets[family].hands["R"]
    assert m.hands["R"].metacarpals == {f: v[0] for f, v in spec.metacarpals.items()}
    assert m.hands["R"].tips == {f: v[0] for f, v in spec.tips.items()}


def test_unreal_without_ue5_metacarpals_still_matches(all_presets):
    bones, parents = preset_rig(all_presets["unreal"], metacarpals=False)
    m = match.detect(bones, parents)
    assert m.preset == "unreal" and all(len(h.joints) == 15 for h in m.hands.values())
    assert not m.hands["R"].metacarpals


def test_mixamo_namespace_and_case_are_ignored(all_presets):
    bones, parents = preset_rig(all_presets["mixamo"])
    rename = {n: n.replace("mixamorig:", "mixamorig7:") for n in bones}
    m = match.detect([rename[n] for n in bones], {rename[k]: rename.get(v) for k, v in parents.items()})
    assert m.preset == "mixamo"
    assert m.hands["L"].joints["thumb1"] == "mixamorig7:LeftHandThumb1"


def test_quaternius_style_names_are_not_taken_for_auto_rig_pro():
    """'Index1.R' reads as Auto-Rig Pro's 'index1.r' case-folded, but that preset finds no wrist there:
    automatic matching takes over and says why."""
    parents = {"Root": None}
    for s in "RL":
        parents |= {f"UpperArm.{s}": "Root", f"LowerArm.{s}": f"UpperArm.{s}", f"Wrist.{s}": f"LowerArm.{s}"}
        for f in FINGERS:
            p = f"Wrist.{s}"
            for k in (1, 2, 3):
                parents[f"{f.capitalize()}{k}.{s}"] = p
                p = f"{f.capitalize()}{k}.{s}"
    m = match.detect(list(parents), parents)
    assert m.preset == "auto", m.report()
    for s in "RL":
        assert m.hands[s].wrist == f"Wrist.{s}" and len(m.hands[s].joints) == 15
        assert m.hands[s].joints["index1"] == f"Index1.{s}" and m.hands[s].joints["thumb1"] == f"Thumb1.{s}"
    assert "preset 'autorigpro' not used (right hand: 15 finger bones but no wrist" in m.report()


def test_a_preset_needs_its_wrist_and_12_finger_bones(all_presets):
    bones, parents = preset_rig(all_presets["vrm"], sides=("R",))
    drop = [b for b in bones if b.endswith(("Index3", "Middle3", "Ring3", "Little3"))]  # 11 of 15 left
    kept = {k: v for k, v in parents.items() if k not in drop}
    m = match.detect(list(kept), kept)
    assert m.preset == "auto" and "only 11 of 15 finger bones" in m.report()
    drop = [b for b in bones if b.endswith(("Index3", "Middle3", "Ring3"))]  # 12 left: the preset fits
    kept = {k: v for k, v in parents.items() if k not in drop}
    assert match.detect(list(kept), kept).preset == "vrm"


def test_presets_that_fit_equally_go_to_automatic_matching(all_presets, tmp_path):
    bones, parents = preset_rig(all_presets["unreal"])
    twin = presets.load_preset(presets.PRESET_DIR / "unreal.toml")
    m = match.detect(bones, parents, "unreal")
    presets.save_preset(m, "unreal_twin", tmp_path)
    assert twin.name == "unreal"
    found = match.detect(bones, parents, extra_dirs=[tmp_path])
    assert found.preset == "auto" and "'unreal', 'unreal_twin' fit equally well" in found.report()
    assert all(len(h.joints) == 15 for h in found.hands.values())


@pytest.mark.parametrize("side", ["R", "L"])
def test_unparented_webxr_joint_set_matches_by_shape_and_position(side):
    """WebXR-style joints: no parents, hyphenated names, no side. The preset finds them and the hand's
    shape tells the side; automatic matching chains them by phalanx words."""
    heads, _, tails = toy_hand(side)
    xr = {"thumb-1": "thumb-metacarpal", "thumb-2": "thumb-phalanx-proximal", "thumb-3": "thumb-phalanx-distal"}
    for f, word in (("index", "index-finger"), ("middle", "middle-finger"), ("ring", "ring-finger"),
                    ("pinky", "pinky-finger")):
        xr |= {f"{f}-1": f"{word}-metacarpal", f"{f}-2": f"{word}-phalanx-proximal",
               f"{f}-3": f"{word}-phalanx-intermediate", f"{f}-4": f"{word}-phalanx-distal"}
    xr["wrist"] = "wrist"
    h = {xr[k]: v for k, v in heads.items()}
    t = {xr[k]: v for k, v in tails.items()}
    order = sorted(h, key=lambda n: hash(n) % 7)  # any order
    parents = {n: None for n in order}
    for mode in ("AUTO", "auto"):
        m = match.detect(order, parents, mode, heads=h, tails=t)
        hand = m.hands[side]
        assert m.preset == ("webxr" if mode == "AUTO" else "auto"), m.report()
        assert set(m.hands) == ({side} if mode == "AUTO" else {"R", "L"})
        assert hand.wrist == "wrist" and len(hand.joints) == 15, m.report()
        assert hand.joints["index1"] == "index-finger-phalanx-proximal"
        assert hand.joints["thumb1"] == "thumb-metacarpal" and hand.joints["thumb3"] == "thumb-phalanx-distal"
        assert hand.metacarpals["pinky"] == "pinky-finger-metacarpal"
        assert "by its shape" in m.report() or "hand's shape" in m.report()
    # Without positions the side cannot be told: assumed right, and said so.
    m = match.detect(order, parents, heads=None)
    assert set(m.hands) == {"R"} and "assumed a right hand" in m.report()


def test_four_bone_fingers_keep_the_metacarpal_out_of_the_phalanges():
    """Finger_Index_1 … _4 with bone 1 starting at the wrist: a metacarpal, though no name says so."""
    heads, parents_toy, tails = toy_hand()
    rename = {"wrist": "Hand_R"}
    for f in FINGERS:
        n = 3 if f == "thumb" else 4
        rename |= {f"{f}-{k}": f"Finger_{f.capitalize()}_{k}_R" for k in range(1, n + 1)}
    parents = {rename[k]: (rename[v] if v else None) for k, v in parents_toy.items()}
    h = {rename[k]: v for k, v in heads.items()}
    m = automatch.auto_match(list(parents), parents, h)
    hand = m.hands["R"]
    assert hand.joints["index1"] == "Finger_Index_2_R" and hand.joints["index3"] == "Finger_Index_4_R"
    assert hand.metacarpals["middle"] == "Finger_Middle_1_R" and not hand.tips
    assert hand.joints["thumb1"] == "Finger_Thumb_1_R"
    # Mixamo-style: a 4th bone at the end is an end bone, not a phalanx (its first bone starts far from the wrist).
    mix = {"Hand": None, "Index1": "Hand", "Index2": "Index1", "Index3": "Index2", "Index4": "Index3"}
    mh = {"Hand": (0, 0, 0), "Index1": (-0.09, 0, 0), "Index2": (-0.135, 0, 0), "Index3": (-0.16, 0, 0),
          "Index4": (-0.18, 0, 0)}  # x < 0: the character's right
    hand = automatch.auto_match(list(mix), mix, mh).hands["R"]
    assert hand.joints["index1"] == "Index1" and hand.tips == {"index": "Index4"}


def test_spatial_chains_without_name_order_follow_distance_from_the_wrist():
    heads, _, _ = toy_hand()
    letters = "abcd"
    h = {"hand.R": heads["wrist"]}
    for f in ("index", "middle", "ring", "pinky"):
        for k in range(1, 5):
            h[f"{f}_{letters[::-1][k - 1]}.R"] = heads[f"{f}-{k}"]  # names whose letters run backwards
    parents = {n: None for n in h}
    hand = automatch.auto_match(list(h), parents, h).hands["R"]
    assert hand.joints["middle1"] == "middle_c.R" and hand.joints["middle3"] == "middle_a.R"
    assert hand.metacarpals["middle"] == "middle_d.R" and hand.wrist == "hand.R"


@pytest.mark.parametrize("name, side, finger", [
    ("Thumb_Proximal_R", "R", "thumb"), ("thb_02.l", "L", "thumb"), ("Daumen2_L", "L", "thumb"),
    ("pouce.R", "R", "thumb"), ("左親指１", "L", "thumb"), ("mixamorig:RightHandIndex2", "R", "index"),
    ("IndexFinger1_R", "R", "index"), ("idx_1_l", "L", "index"), ("forefinger.L", "L", "index"),
    ("pointer_02.R", "R", "index"), ("右人差指２", "R", "index"), ("middle_01_r", "R", "middle"),
    ("Mid2.L", "L", "middle"), ("中指2.R", "R", "middle"), ("ring_01_l", "L", "ring"), ("rng1_R", "R", "ring"),
    ("annular.L", "L", "ring"), ("薬指1_L", "L", "ring"), ("J_Bip_L_Little1", "L", "pinky"),
    ("pinkie_1.R", "R", "pinky"), ("lil_02_r", "R", "pinky"), ("small2_L", "L", "pinky"),
    ("右小指1", "R", "pinky"), ("finger5-2.L", "L", "pinky"), ("finger1-1.R", "R", "thumb"),
    ("LeftHandPinky3", "L", "pinky"), ("c_pinky1.r", "R", "pinky"),
])
def test_finger_and_side_words(name, side, finger):
    assert names.name_finger(name) == finger, name
    assert names.name_side(name) == side, name


@pytest.mark.parametrize("name, rank", [("index-finger-phalanx-distal", 3), ("thumb-metacarpal", 0),
                                        ("Index3.R", 3), ("finger2-1.L", 1), ("pinky-finger-tip", 4), ("Hand", None)])
def test_phalanx_rank_from_names(name, rank):
    assert names.phalanx_rank(name) == rank


@pytest.mark.parametrize("name", ["mixamorig:LeftForeArm", "lowerarm_l", "spine_mid", "hand.R", "palm.01.L",
                                  "upperarm_r", "Head"])
def test_limb_bones_are_not_fingers(name):
    assert names.name_finger(name) is None


def test_automatic_matching_of_a_foreign_rig_with_2_bone_thumb_and_no_side_names():
    """Names in German with abbreviations, no side suffix (side from position), 2-bone thumb, end bones."""
    parents = {"Arm": None, "Unterarm": "Arm", "Hand": "Unterarm"}
    chains = {"Daumen": 2, "Zeige": 3, "Mittel": 3, "Ring": 3, "Kleiner": 3}
    for word, n in chains.items():
        p = "Hand"
        for k in range(1, n + 1):
            parents[f"{word}{k}"] = p
            p = f"{word}{k}"
        parents[f"{word}_end"] = p
    heads = {n: (-0.5, 0.0, 1.0) for n in parents}  # on the character's right (x < 0)
    m = automatch.auto_match(list(parents), parents, heads)
    hand = m.hands["R"]
    assert hand.wrist == "Hand"
    assert hand.missing == ["thumb1"]
    assert hand.joints["thumb2"] == "Daumen1" and hand.joints["thumb3"] == "Daumen2"
    assert hand.joints["middle1"] == "Mittel1" and hand.joints["pinky3"] == "Kleiner3"
    assert hand.tips["index"] == "Zeige_end"
    assert "side taken from their position" in m.report()
    assert "not matched: thumb1" in m.report()


def test_rig_without_fingers_and_one_handed_rig_give_clear_reports(all_presets):
    parents = {"spine": None, "upper_arm.R": "spine", "forearm.R": "upper_arm.R", "hand.R": "forearm.R"}
    m = match.detect(list(parents), parents)
    assert m.n_found == 0
    text = m.report()
    assert "right hand: no finger bones found" in text and "No usable hand" in text
    bones, parents = preset_rig(all_presets["vrm"], sides=("R",))
    m = match.detect(bones, parents)
    assert m.hands["R"].usable and not m.hands["L"].joints
    assert "left hand: no finger bones found" in m.report()


def test_rigify_control_chain_is_preferred_over_deform_chain():
    """Generated Rigify hierarchy (names and parents as Blender 5.0 builds them), automatic matching."""
    parents = {"DEF-hand.R": None, "ORG-palm.01.R": "DEF-hand.R"}
    for f in ("f_index", "thumb"):
        parents[f"DEF-{f}.01.R"] = "ORG-palm.01.R"
        parents[f"DEF-{f}.02.R"] = f"DEF-{f}.01.R"
        parents[f"DEF-{f}.03.R"] = f"DEF-{f}.02.R"
        parents[f"MCH-{f}.01_drv.R"] = "ORG-palm.01.R"
        parents[f"{f}.01.R"] = f"MCH-{f}.01_drv.R"
        parents[f"MCH-{f}.02_drv.R"] = f"{f}.01.R"
        parents[f"{f}.02.R"] = f"MCH-{f}.02_drv.R"
        parents[f"MCH-{f}.03_drv.R"] = f"{f}.02.R"
        parents[f"{f}.03.R"] = f"MCH-{f}.03_drv.R"
        parents[f"{f}.01.R.001"] = f"{f}.03.R"
        parents[f"{f}.01_master.R"] = "ORG-palm.01.R"
    m = automatch.auto_match(list(parents), parents)
    hand = m.hands["R"]
    assert hand.joints["index1"] == "f_index.01.R" and hand.joints["thumb3"] == "thumb.03.R"
    assert hand.tips["index"] == "f_index.01.R.001"
    assert hand.wrist == "ORG-palm.01.R"  # the nearest common parent of the chains found


# --------------------------------------------------------------------------------------------
# Preset files: reading what is broken, writing what is odd
# --------------------------------------------------------------------------------------------

def test_saved_preset_round_trips(all_presets, tmp_path):
    bones, parents = preset_rig(all_presets["unreal"])
    m = match.detect(bones, parents, "unreal")
    path = presets.save_preset(m, "my_rig", tmp_path, label="My rig")
    loaded = presets.load_presets([tmp_path])
    assert "my_rig" in loaded and loaded["my_rig"].label == "My rig"
    m2 = match.detect(bones, parents, "my_rig", extra_dirs=[tmp_path])
    for side in "RL":
        assert m2.hands[side].joints == m.hands[side].joints
        assert m2.hands[side].wrist == m.hands[side].wrist
        assert m2.hands[side].metacarpals == m.hands[side].metacarpals
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_rig.toml"]
    with pytest.raises(presets.PresetError, match="letters, digits"):
        presets.save_preset(m, "bad name/..", tmp_path)


def _one_hand(bone_names: list[str]) -> match.RigMatch:
    joints = dict(zip(JOINT_NAMES[1:], bone_names))
    return match.RigMatch("x", {"R": match.HandMatch("R", bone_names[-1], joints, tips={"index": bone_names[0]})})


def test_save_escapes_control_characters_and_leaves_nothing_on_failure(tmp_path):
    odd = ["a\nb", 'quote"', "back\\slash", "tab\there", "bell\x07", "del\x7f", "é中", "\x00nul"] + \
          [f"b{i}" for i in range(8)]
    m = _one_hand(odd)
    path = presets.save_preset(m, "odd", tmp_path)
    back = presets.load_preset(path)
    assert back.hands["R"].fingers["index"][0] == ("a\nb",) and back.hands["R"].wrist == ("b7",)
    assert match.detect(odd + ["b7"], {n: None for n in odd + ["b7"]}, "odd", extra_dirs=[tmp_path]).hands["R"].joints \
        == m.hands["R"].joints
    before = path.read_bytes()
    with pytest.raises(presets.PresetError, match="surrogate"):
        presets.save_preset(_one_hand(["\ud800"] + odd[1:]), "odd", tmp_path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["odd.toml"]


def test_save_cleans_up_when_the_written_file_does_not_read_back(tmp_path, monkeypatch):
    m = _one_hand([f"b{i}" for i in range(16)])
    monkeypatch.setattr(presets, "_same_mapping", lambda preset, match: False)
    with pytest.raises(presets.PresetError, match="does not read back"):
        presets.save_preset(m, "x", tmp_path)
    assert not list(tmp_path.iterdir())


GOOD = presets.PRESET_DIR.joinpath("vrm.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize("label, content", [
    ("not toml", b"name = [\n"),
    ("not utf-8", GOOD.encode("utf-8").replace(b"VRoid", b"VR\xff\xfeid")),
    ("deep nesting", b"name = 'x'\nsides = {R = 'R'}\nwrist = " + b"[" * 5000 + b"]" * 5000),
    ("fingers is a number", b"name='x'\nsides={R='R'}\nwrist='w'\nfingers=3\n"),
    ("finger entry is a table", GOOD.replace('thumb = ["J_Bip_{S}_Thumb1"', 'thumb = [{a=1}').encode()),
    ("wrist is a number", GOOD.replace('wrist = "J_Bip_{S}_Hand"', "wrist = 5").encode()),
    ("hands is a list", b"name='x'\nhands=[1,2]\n"),
    ("hand is a string", b"name='x'\n[hands]\nR='oops'\n"),
    ("side token not text", GOOD.replace('sides = { R = "R", L = "L" }', "sides = { R = 1, L = 2 }").encode()),
    ("correction not numbers", (GOOD + "axis_correction_deg = ['a', 'b', 'c']\n").encode()),
    ("correction nan", (GOOD.replace("[fingers]", "axis_correction_deg = [nan, 0, 0]\n[fingers]")).encode()),
    ("correction bools", (GOOD.replace("[fingers]", "axis_correction_deg = [true, 0, 0]\n[fingers]")).encode()),
    ("metacarpals a list", GOOD.replace("[fingers]", "metacarpals = [1]\n[fingers]").encode()),
    ("arm not a list", GOOD.replace('arm = ["J_Bip', 'arm = "J_Bip').replace('LowerArm"]', 'LowerArm"').encode()),
    ("name empty", GOOD.replace('name = "vrm"', 'name = ""').encode()),
    ("name with a newline", GOOD.replace('name = "vrm"', 'name = "v\\nrm"').encode()),
    ("too big", GOOD.encode() + b"#" * (presets.MAX_PRESET_BYTES + 10)),
])
def test_a_broken_preset_file_is_a_preset_error_naming_it(tmp_path, label, content):
    bad = tmp_path / "broken.toml"
    bad.write_bytes(content)
    with pytest.raises(presets.PresetError, match=r"broken\.toml"):
        presets.load_preset(bad)


def test_a_broken_user_preset_is_skipped_with_a_note(all_presets, tmp_path):
    (tmp_path / "broken.toml").write_bytes(b"\xff\xfe not utf-8")
    (tmp_path / "deep.toml").write_text("x = " + "[" * 5000 + "]" * 5000)
    (tmp_path / "folder.toml").mkdir()
    (tmp_path / ".partial.toml").write_text("garbage = [")  # hidden leftovers are not presets
    notes: list[str] = []
    loaded = presets.load_presets([tmp_path], notes=notes)
    assert set(FAMILIES) <= set(loaded) and len(notes) == 3
    assert any("broken.toml" in n and "UTF-8" in n for n in notes) and any("deep.toml" in n for n in notes)
    bones, parents = preset_rig(all_presets["mixamo"])
    m = match.detect(bones, parents, extra_dirs=[tmp_path])
    assert m.preset == "mixamo" and any("Skipped a broken user preset" in n for n in m.notes)
    with pytest.raises(presets.PresetError, match="no retarget preset named 'broken'"):
        match.detect(bones, parents, "broken", extra_dirs=[tmp_path])


def test_malformed_preset_names_the_file_and_the_fix(tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text('name = "broken"\nsides = { R = "R" }\nwrist = "hand.{S}"\n[fingers]\nthumb = ["a", "b"]\n')
    with pytest.raises(presets.PresetError, match=r"broken\.toml.*thumb.*3 entries"):
        presets.load_preset(bad)
    with pytest.raises(presets.PresetError, match="no retarget preset named 'nope'"):
        match.detect(["a"], {"a": None}, "nope")


_toml_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
        ["R", "L", "thumb", "index", "middle", "ring", "pinky", "wrist", "x"]), inner, max_size=4),
    max_leaves=12)


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if math.isfinite(value) else ("nan" if value != value else ("inf" if value > 0 else "-inf"))
    if isinstance(value, str):
        return presets.toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items() if v is not None) + "}"
    return '""'


@PROPERTY
@given(doc=st.dictionaries(st.sampled_from(["name", "label", "description", "sides", "wrist", "arm", "fingers",
                                            "metacarpals", "tips", "hands", "axis_correction_deg", "follow_prefix",
                                            "wrist_controls"]), _toml_value, max_size=8))
def test_any_preset_shaped_document_loads_or_is_a_preset_error(tmp_path, doc):
    path = tmp_path / "fuzz.toml"
    path.write_text("\n".join(f"{k} = {_toml(v)}" for k, v in doc.items() if v is not None) + "\n", encoding="utf-8")
    try:
        p = presets.load_preset(path)
    except presets.PresetError as exc:
        assert "fuzz.toml" in str(exc)
    else:
        assert isinstance(p, presets.Preset) and set(p.hands) <= {"R", "L"}


@PROPERTY
@given(data=st.binary(max_size=300))
def test_any_bytes_load_or_are_a_preset_error(tmp_path, data):
    path = tmp_path / "bytes.toml"
    path.write_bytes(b"name = 'x'\n" + data)
    try:
        presets.load_preset(path)
    except presets.PresetError as exc:
        assert "bytes.toml" in str(exc)


@PROPERTY
@given(bone_names=st.lists(st.text(min_size=1, max_size=12), min_size=16, max_size=16, unique=True))
def test_any_bone_names_save_and_read_back_exactly(tmp_path, bone_names):
    folder = tmp_path / f"p{abs(hash(tuple(bone_names))) % 10**9}"
    m = _one_hand(bone_names)
    try:
        path = presets.save_preset(m, "fuzz", folder)
    except presets.PresetError as exc:  # only text TOML cannot hold
        assert "surrogate" in str(exc)
        assert not folder.exists() or not [p for p in folder.iterdir() if p.suffix != ".toml"]
        return
    back = presets.load_preset(path)
    hand = m.hands["R"]
    assert back.hands["R"].wrist == (hand.wrist,)
    assert [back.hands["R"].fingers[f][k][0] for f in FINGERS for k in range(3)] == \
           [hand.joints.get(JOINT_NAMES[j], "") for f in FINGERS for j in FINGER_JOINTS[f]]
    assert sorted(os.listdir(folder)) == ["fuzz.toml"]


# --------------------------------------------------------------------------------------------
# Hand frames and pose matching
# --------------------------------------------------------------------------------------------

def _rot(axis, angle):
    return Rotation.from_rotvec(np.asarray(axis, float) / np.linalg.norm(axis) * angle).as_matrix()


def test_hand_frame_is_mirrored_between_sides():
    w, i, m, p = np.zeros(3), np.array([-0.09, 0.0, 0.02]), np.array([-0.095, 0.0, 0.0]), np.array([-0.08, 0.0, -0.04])
    H = handframe.hand_frame(w, i, m, p, "R")
    assert np.allclose(H.T @ H, np.eye(3)) and np.isclose(np.linalg.det(H), 1)
    mirror = np.diag([-1.0, 1.0, 1.0])
    HL = handframe.hand_frame(*(mirror @ v for v in (w, i, m, p)), "L")
    assert np.isclose(np.linalg.det(HL), -1)
    assert np.allclose(HL, mirror @ H)  # the same anatomical axes, mirrored
    with pytest.raises(ValueError, match="wrist"):
        handframe.hand_frame(w, i, w, p, "R")


@pytest.mark.parametrize("side", ["R", "L"])
def test_hand_side_from_the_thumb_on_the_palm_side(side):
    heads, _, _ = toy_hand(side)
    R = _rot([0.3, -1, 0.5], 2.0)  # any placement
    pts = {k: R @ v + 5.0 for k, v in heads.items()}
    thumb = [pts["thumb-2"], pts["thumb-3"]]
    assert handframe.hand_side(pts["wrist"], pts["index-2"], pts["middle-2"], pts["pinky-2"], thumb) == side
    flat = [pts["wrist"] + (pts["index-2"] - pts["wrist"]) * 0.5]  # a thumb in the knuckles' plane: cannot tell
    assert handframe.hand_side(pts["wrist"], pts["index-2"], pts["middle-2"], pts["pinky-2"], flat) is None


def _geometry(heads, tails, side="R", first=2):
    """HandGeometry of the toy hand's fingers (phalanges from bone ``first`` of each long finger)."""
    joints, h, e = [], [], []
    for f in FINGERS:
        bones = [f"{f}-{k}" for k in ((1, 2, 3) if f == "thumb" else range(first, first + 3))]
        for k, b in enumerate(bones):
            joints.append(f"{f}{k + 1}")
            h.append(heads[b])
            e.append(tails[b])
    order = [joints.index(j) for j in JOINT_NAMES[1:]]
    H = handframe.hand_frame(heads["wrist"], heads[f"index-{first}"], heads[f"middle-{first}"], heads[f"pinky-{first}"],
                             side)
    return handframe.HandGeometry([joints[i] for i in order], np.array(h)[order], np.array(e)[order], heads["wrist"], H)


def test_pose_matching_lays_target_segments_on_the_source_whatever_the_rest_curl():
    """A target whose fingers rest curled 30° per joint and whose bones have other rolls: matched poses
    point every segment where the source's points. Delta copying (no rest alignment) leaves it curled."""
    src = _geometry(*[d for i, d in enumerate(toy_hand()) if i != 1])
    tgt = _geometry(*[d for i, d in enumerate(toy_hand(curl_deg=30.0, finger_scale=1.2)) if i != 1])
    joints = list(src.joints)
    A = handframe.rest_alignment(src.segment_frames(joints), tgt.segment_frames(joints))
    assert not np.allclose(A, np.eye(3), atol=0.1)  # the alignment differs from a shared axis
    rng = np.random.default_rng(0)
    D = np.stack([_rot(rng.normal(size=3), rng.uniform(0, 1.2)) for _ in joints])[None]  # any source pose
    Dt = handframe.match_pose(D, A)
    Gs, Gt = src.segment_frames(joints), tgt.segment_frames(joints)
    assert np.allclose(Dt[0] @ Gt, D[0] @ Gs, atol=1e-9)  # segment frames coincide (direction and twist)
    dirs = lambda geo, R: np.einsum("jab,jb->ja", R, geo.directions / np.linalg.norm(geo.directions, axis=1)[:, None])
    assert np.allclose(dirs(tgt, Dt[0]), dirs(src, D[0]), atol=1e-9)
    open_t = handframe.match_pose(np.eye(3)[None, None].repeat(len(joints), 1), A)[0]
    assert np.allclose(dirs(tgt, open_t), dirs(src, np.eye(3)[None].repeat(len(joints), 0)), atol=1e-9)
    angle = np.degrees(np.arccos(np.clip(np.sum(dirs(tgt, D[0]) * dirs(src, D[0]), axis=1), -1, 1)))
    assert angle.max() > 25  # copying the rotations instead leaves the rest curl in


def test_segment_frames_are_rotations_along_the_segment_about_the_finger_axis():
    d = np.array([[1.0, 0.1, 0.3], [0.8, 0.1, 0.7], [0.5, 0.0, 0.9]])
    axis = handframe.flexion_axis(d)
    assert np.isclose(axis[2], 0.0) and np.isclose(np.linalg.norm(axis), 1.0)
    G = handframe.segment_frames(d, axis)
    assert np.allclose(np.linalg.det(G), 1.0) and np.allclose(G @ np.swapaxes(G, 1, 2), np.eye(3))
    assert np.allclose(G[:, :, 0], d / np.linalg.norm(d, axis=1)[:, None])
    assert np.allclose(np.einsum("ja,a->j", G[:, :, 2], axis), 0.0)  # the flexion axis lies in (x, y)


def test_hand_geometry_poses_fingers_as_rigid_chains():
    heads, _, tails = toy_hand()
    geo = _geometry(heads, tails)
    rest_h, rest_e = geo.pose_points(np.eye(3)[None, None].repeat(len(geo.joints), 1))
    assert np.allclose(rest_h[0], geo.heads) and np.allclose(rest_e[0], geo.ends)
    D = np.eye(3)[None, None].repeat(len(geo.joints), 1)
    i = geo.joints.index("index1")
    D[0, i] = _rot([0, 1, 0], 0.5)
    h, e = geo.pose_points(D)
    j2 = geo.joints.index("index2")
    assert np.allclose(h[0, j2], e[0, i]) and not np.allclose(h[0, j2], geo.heads[j2])
    assert np.isclose(geo.length, np.linalg.norm(geo.tip("middle")))


def test_transfer_reproduces_a_curl_on_a_rotated_rolled_and_mirrored_hand():
    rng = np.random.default_rng(0)
    Hs = handframe.hand_frame(np.zeros(3), [1, 0.2, 0], [1, 0, 0], [1, -0.2, 0], "R")
    S_rest = _rot(rng.normal(size=3), 1.0)
    D_true = _rot([0, -1, 0], np.radians(40))  # hand-frame coordinates
    S_pose = Hs @ D_true @ Hs.T @ S_rest
    D = handframe.source_delta(S_pose, S_rest, Hs, Hs)
    assert np.allclose(D, D_true)
    R0 = _rot([0.3, 1, -0.2], 2.0)
    Ht = R0 @ np.diag([-1.0, 1, 1]) @ Hs  # mirror image, then turned
    Ht = handframe.hand_frame(np.zeros(3), Ht[:, 0] + 0.2 * Ht[:, 1], Ht[:, 0], Ht[:, 0] - 0.2 * Ht[:, 1], "L")
    T_rest = _rot(rng.normal(size=3), 2.0)
    W = _rot([1, 1, 0], 0.5)
    T_pose = handframe.target_rotation(D, T_rest, W @ Ht, Ht)
    rel = Ht.T @ W.T @ T_pose @ T_rest.T @ Ht
    assert np.allclose(rel, D_true, atol=1e-9)
    assert np.isclose(np.linalg.det(T_pose), 1)
    Q = handframe.hand_turn(Hs, W @ Hs)  # a turned hand, in its own axes
    assert np.allclose(Q, Hs.T @ W @ Hs) and np.isclose(np.arccos((np.trace(Q) - 1) / 2), 0.5)


def test_axis_correction_turns_the_transferred_rotation():
    C = handframe.euler_xyz_deg([0, 0, 90])
    assert np.allclose(C, _rot([0, 0, 1], np.pi / 2))
    assert np.allclose(handframe.euler_xyz_deg([30, -20, 10]),
                       _rot([0, 0, 1], np.radians(10)) @ _rot([0, 1, 0], np.radians(-20)) @ _rot([1, 0, 0], np.radians(30)))
    D = _rot([0, -1, 0], 0.7)
    out = handframe.target_rotation(D, np.eye(3), np.eye(3), np.eye(3), correction=C)
    assert np.allclose(out, _rot([1, 0, 0], 0.7))


# --------------------------------------------------------------------------------------------
# Contacts
# --------------------------------------------------------------------------------------------

def test_wrist_turn_scales_along_its_geodesic():
    Q = _rot([0.2, 1.0, 0.3], 1.2)
    half = handframe.scale_rotation(Q, 0.5)
    assert np.allclose(half @ half, Q) and np.allclose(handframe.scale_rotation(Q, 1.0), Q)
    assert np.allclose(handframe.scale_rotation(Q, 0.0), np.eye(3))


def test_contact_pass_closes_a_pinch_on_longer_fingers_and_leaves_the_rest():
    src = _geometry(*[d for i, d in enumerate(toy_hand()) if i != 1])
    tgt = _geometry(*[d for i, d in enumerate(toy_hand(finger_scale=1.25)) if i != 1])
    n = len(src.joints)
    # Source pose: thumb and index bent until their tips touch (a small solve on the source).
    D = np.eye(3)[None, None].repeat(n, 1).repeat(2, 0)  # frame 0: pinch, frame 1: open hand
    goals_open = contacts.source_goals(src, D[1:], tgt)
    assert all(not np.any(w) for k in goals_open for _, w in goals_open[k].values())
    solved = contacts.contact_pass(D[:1], src, {"pinch": {"index": (np.zeros((1, 3)), np.ones(1))}, "palm": {}},
                                   contacts.ContactOptions(iterations=30))
    _, ends = src.pose_points(solved)
    i3, t3 = src.joints.index("index3"), src.joints.index("thumb3")
    assert np.linalg.norm(ends[0, i3] - ends[0, t3]) / src.length < 0.01
    D[0] = solved[0]
    joints = list(src.joints)
    A = handframe.rest_alignment(src.segment_frames(joints), tgt.segment_frames(joints))
    Dt = handframe.match_pose(D, A)
    _, e_before = tgt.pose_points(Dt)
    gap_before = np.linalg.norm(e_before[0, i3] - e_before[0, t3]) / tgt.length
    goals = contacts.source_goals(src, D, tgt)
    out = contacts.contact_pass(Dt, tgt, goals)
    _, e_after = tgt.pose_points(out)
    gap_after = np.linalg.norm(e_after[0, i3] - e_after[0, t3]) / tgt.length
    assert gap_before > 0.03 and gap_after < 0.01, (gap_before, gap_after)
    untouched = [i for i, j in enumerate(joints) if not j.startswith(("thumb", "index"))]
    assert np.allclose(out[0, untouched], Dt[0, untouched]) and np.allclose(out[1], Dt[1])
    turn = [np.degrees(np.arccos(np.clip((np.trace(out[0, i] @ Dt[0, i].T) - 1) / 2, -1, 1))) for i in range(n)]
    assert max(turn) < 25


def test_a_fingertip_on_the_palm_touches_the_target_palm():
    """A fist-like index whose tip rests on the palm: on a target with shorter fingers the tip is brought
    to the same height above the palm (hand lengths), wherever along the palm its own length lands it."""
    src = _geometry(*[d for i, d in enumerate(toy_hand()) if i != 1])
    tgt = _geometry(*[d for i, d in enumerate(toy_hand(finger_scale=0.7)) if i != 1])
    n = len(src.joints)
    D = np.eye(3)[None, None].repeat(n, 1)
    i3 = src.joints.index("index3")
    for k, deg in zip((1, 2, 3), (95, 190, 270)):  # the index curled into the palm (about -y: towards +z)
        D[0, src.joints.index(f"index{k}")] = _rot([0, -1, 0], np.radians(deg))
    _, ends = src.pose_points(D)
    assert ends[0, i3, 2] / src.length < contacts.ContactOptions().palm_on and ends[0, i3, 0] < src.palm_length
    goals = contacts.source_goals(src, D, tgt)
    height, w = goals["palm"]["index"]
    assert w[0] == 1.0 and not goals["palm"]["middle"][1][0]
    assert np.isclose(height[0], ends[0, i3, 2] * tgt.length / src.length)
    Dt = handframe.match_pose(D, handframe.rest_alignment(src.segment_frames(src.joints), tgt.segment_frames(src.joints)))
    out = contacts.contact_pass(Dt, tgt, goals)
    _, e_before = tgt.pose_points(Dt)
    _, e_after = tgt.pose_points(out)
    assert abs(e_before[0, i3, 2] - height[0]) / tgt.length > 0.01
    assert abs(e_after[0, i3, 2] - height[0]) / tgt.length < 0.002
    untouched = [i for i, j in enumerate(src.joints) if not j.startswith("index")]
    assert np.allclose(out[0, untouched], Dt[0, untouched])


def test_contact_weights_fade_in_and_out():
    assert contacts.ramp(0.05, 0.1, 0.2) == 1.0 and contacts.ramp(0.25, 0.1, 0.2) == 0.0
    assert 0.0 < contacts.ramp(0.15, 0.1, 0.2) < 1.0
