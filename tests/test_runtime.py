"""The torch-free capture runtime, the checkpoint format and the engine's layering (issues 10, 13, 15)."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dahyf.assets import DEFAULT_CHECKPOINT, SAMPLE_VIDEO
from dahyf.capture.errors import CaptureError
from dahyf.net.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint

ENGINE = Path(__file__).resolve().parent.parent / "engine"

#: Makes ``import torch`` fail as if torch were not installed (the Python 3.13 tier has none).
BLOCK_TORCH = textwrap.dedent("""
    import sys
    class _NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
    sys.meta_path.insert(0, _NoTorch())
""")


def _run_without_torch(code: str) -> str:
    res = subprocess.run([sys.executable, "-c", BLOCK_TORCH + textwrap.dedent(code)], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def test_capture_runs_without_torch(tmp_path):
    out = _run_without_torch(f"""
        import sys, json
        import dahyf
        from dahyf.assets import SAMPLE_VIDEO
        take = dahyf.load_engine().capture(str(SAMPLE_VIDEO), hands="right", frame_range=(0, 6), smooth=0.0,
                                           out={str(tmp_path / "t.npz")!r})
        print(json.dumps({{"rows": len(take), "torch": "torch" in sys.modules,
                           "finite": bool(__import__("numpy").isfinite(take.pose).all())}}))
    """)
    res = json.loads(out.strip().splitlines()[-1])
    assert res == {"rows": 6, "torch": False, "finite": True}
    assert (tmp_path / "t.npz").is_file()


def test_the_capture_command_runs_without_torch_and_train_says_what_it_needs(tmp_path):
    out = _run_without_torch(f"""
        import sys, contextlib, io
        from dahyf.cli import main
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            train = main(["train", "landmark", "--out", "x.npz"])
        rc = main(["capture", {str(SAMPLE_VIDEO)!r}, "-o", {str(tmp_path / "t.npz")!r}, "--frames", "0:3",
                   "--hands", "right"])
        print(rc, train, "torch" in sys.modules, "torch" in err.getvalue())
    """)
    assert out.split()[-4:] == ["0", "2", "False", "True"]
    assert (tmp_path / "t.npz").is_file()


def test_hand_tables_and_the_hand_model_import_without_torch():
    out = _run_without_torch("""
        import sys
        import dahyf.hand.tables, dahyf.hand
        hand = dahyf.hand.load_hand_model("open", "left")
        import numpy as np
        print(hand(np.zeros((1, 16, 3), np.float32)).keypoints.shape, "torch" in sys.modules)
    """)
    assert out.split() == ["(1,", "21,", "3)", "False"]


# --- layering ---------------------------------------------------------------------------------------
#: (importing package, imported package) pairs that must never occur in engine/ (function bodies too).
FORBIDDEN = {("net", "capture"), ("capture", "train"), ("hand", "net"), ("hand", "capture"), ("hand", "train"),
             ("net", "train"), ("net", "eval"), ("capture", "eval")}


def _engine_imports():
    """(module path, importing package, imported top module) for every import in engine/."""
    for path in ENGINE.rglob("*.py"):
        rel = path.relative_to(ENGINE)
        pkg = rel.parts[0] if len(rel.parts) > 1 else ""
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield rel, pkg, alias.name
            elif isinstance(node, ast.ImportFrom):
                if node.level == 0:
                    yield rel, pkg, node.module or ""
                    continue
                base = list(rel.parts[:-1])[: len(rel.parts) - node.level]
                target = base + (node.module.split(".") if node.module else [])
                names = [target] if node.module else [target + [a.name] for a in node.names]
                for t in names:
                    yield rel, pkg, "dahyf." + ".".join(t)


def _violations(forbidden):
    bad = []
    for rel, pkg, mod in _engine_imports():
        top = mod.split(".")[0]
        if top in ("bpy", "mathutils", "dahyf_blender", "bpy_extras"):
            bad.append(f"{rel}: imports {mod}")
        parts = mod.split(".")
        if parts[0] == "dahyf" and len(parts) > 1 and (pkg, parts[1]) in forbidden:
            bad.append(f"{rel}: {pkg} imports {mod}")
    return bad


def test_engine_layers_do_not_import_upwards_or_blender():
    bad = _violations(FORBIDDEN)
    assert not bad, "\n".join(bad)


def test_eval_does_not_import_train():
    bad = _violations({("eval", "train")})
    assert not bad, "\n".join(bad)


def test_the_capture_runtime_modules_do_not_import_torch():
    """The estimator, refinement, hand model, geometry and pipeline never import torch at module level."""
    runtime = ["backend.py", "geometry.py", "constants.py", "hand/model.py", "hand/kinematics.py",
               "hand/quaternion.py", "hand/mirror.py", "net/landmark.py", "net/refine.py", "net/regressor.py",
               "net/camera.py", "net/confidence.py", "net/encoding.py", "net/batch.py", "net/checkpoint.py",
               "capture/pipeline.py", "capture/engine.py", "capture/filters.py", "capture/preview.py"]
    for name in runtime:
        tree = ast.parse((ENGINE / name).read_text(encoding="utf-8"))
        for node in tree.body:
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(m.split(".")[0] == "torch" for m in mods), name


# --- the checkpoint format ---------------------------------------------------------------------------
def _rewrite(tmp_path, name="c.npz", config=None, meta=None, weights=None):
    p = read_checkpoint(DEFAULT_CHECKPOINT)
    return save_checkpoint(tmp_path / name, p["kind"], {**p["config"], **(config or {})},
                           weights(p["state_dict"]) if weights else p["state_dict"], {**p["meta"], **(meta or {})})


def test_shipped_checkpoint_is_an_npz_without_pickles():
    with np.load(DEFAULT_CHECKPOINT, allow_pickle=False) as z:
        assert "__dahyf__" in z.files
        header = json.loads(z["__dahyf__"].tobytes())
        assert header["kind"] == "landmark" and header["format"] == "dahyf-checkpoint"
        assert all(z[k].dtype == np.float32 for k in z.files if k != "__dahyf__")


def test_an_old_torch_checkpoint_converts_bit_for_bit(tmp_path):
    torch = pytest.importorskip("torch")
    from dahyf.net.checkpoint import convert

    p = read_checkpoint(DEFAULT_CHECKPOINT)
    torch.save({"kind": p["kind"], "config": p["config"], "meta": p["meta"],
                "state_dict": {k: torch.from_numpy(v) for k, v in p["state_dict"].items()}}, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt").config == load_checkpoint().config
    q = read_checkpoint(convert(tmp_path / "old.pt", tmp_path / "new.npz"))
    assert q["meta"] == p["meta"] and q["config"] == p["config"]
    for k, v in p["state_dict"].items():
        assert q["state_dict"][k].tobytes() == v.tobytes(), k


@pytest.mark.parametrize("options, match", [
    ({"iterations": 2, "evil": 1}, "unknown refine_pose option 'evil'"),
    ({"iterations": "2"}, "iterations must be a int"),
    ({"iterations": True}, "iterations must be a int"),
    ({"huber": -1.0}, "huber must be a float"),
    ({"root_prior": 1e9}, "root_prior must be a float"),
    ([1, 2], "must be a mapping"),
])
def test_checkpoint_refine_options_are_whitelisted_and_typed(tmp_path, options, match):
    path = _rewrite(tmp_path, meta={"refine_pose_options": options})
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path)


def test_checkpoint_flags_and_config_are_typed(tmp_path):
    with pytest.raises(CheckpointError, match="meta.refine must be true or false"):
        load_checkpoint(_rewrite(tmp_path, meta={"refine": "yes"}))
    with pytest.raises(CheckpointError, match="config.width"):
        load_checkpoint(_rewrite(tmp_path, config={"width": "384"}))
    with pytest.raises(CheckpointError, match="weights do not match"):
        load_checkpoint(_rewrite(tmp_path, weights=lambda w: {k: v for k, v in w.items() if "head_cam" not in k}))


def test_an_npz_with_object_arrays_or_no_header_is_refused(tmp_path):
    np.savez(tmp_path / "obj.npz", __dahyf__=np.frombuffer(b"{}", np.uint8), w=np.array([{}, 1], dtype=object))
    with pytest.raises(CheckpointError, match="not a readable|not a DaHyF"):
        load_checkpoint(tmp_path / "obj.npz")
    np.savez(tmp_path / "plain.npz", w=np.zeros(3))
    with pytest.raises(CheckpointError, match="no __dahyf__ header"):
        load_checkpoint(tmp_path / "plain.npz")


def test_a_nan_producing_checkpoint_writes_no_take(tmp_path):
    import dahyf

    path = _rewrite(tmp_path, weights=lambda w: {k: (v * np.nan if k == "regressor.head_cam.bias" else v)
                                                 for k, v in w.items()})
    engine = dahyf.load_engine(path, device="cpu")
    with pytest.warns(RuntimeWarning, match="non-finite"), pytest.raises(CaptureError, match="non-finite"):
        engine.capture(SAMPLE_VIDEO, hands="right", frame_range=(0, 4), out=tmp_path / "take.npz")
    assert not (tmp_path / "take.npz").exists() and not (tmp_path / "take.json").exists()


def test_a_focal_in_millimetres_is_refused_with_a_message_about_pixels(tmp_path):
    import dahyf

    with pytest.raises(CaptureError, match="pixels, not millimetres"):
        dahyf.load_engine(device="cpu").capture(SAMPLE_VIDEO, hands="right", frame_range=(0, 2), focal=26.0)


@pytest.mark.cuda
def test_the_cuda_estimator_runs_the_same_code_as_the_numpy_one(sampler):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from dahyf.net.batch import HandBatch
    from dahyf.net.landmark import LandmarkEstimator

    b = sampler.sample(torch.Generator().manual_seed(4), 32)
    batch = HandBatch.of(b.landmarks, np.ones(32, bool), b.image_size, b.focal)
    est = load_checkpoint()
    gpu = LandmarkEstimator(est.config, est.weights, device="cuda", refine=est.refine, meta=est.meta)
    out_np, out_gpu = est.predict(batch), gpu.predict(batch)
    assert out_gpu["pose"].is_cuda
    for k in ("pose", "betas", "transl", "confidence"):
        np.testing.assert_allclose(out_np[k], out_gpu[k].cpu().numpy(), atol=1e-4, rtol=1e-4, err_msg=k)
