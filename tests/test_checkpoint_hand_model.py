"""A checkpoint records the kind of hand model it was trained with ('open' | 'mano'), never a path;
the MANO files come from the caller (``--mano DIR``, the add-on's MANO folder, ``hand_model=DIR``)."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from dahyf.assets import DEFAULT_CHECKPOINT
from dahyf.hand.mano_io import ModelFileError
from dahyf.hand.model import load_hand_model
from dahyf.net.checkpoint import HEADER, CheckpointError, load_checkpoint, main, read_checkpoint, save_checkpoint

from hostile_files import object_scalar_pickle


def _write_raw(path, payload, **config):
    """A checkpoint file as any writer could make it (no save-side checks): ``payload`` with ``config`` changed."""
    header = {"format": "dahyf-checkpoint", "version": 1, "kind": payload["kind"],
              "config": {**payload["config"], **config}, "meta": payload["meta"]}
    np.savez(path, **payload["state_dict"], **{HEADER: np.frombuffer(json.dumps(header).encode(), np.uint8)})
    return path


class _Opens:
    """Records every file the process opens under ``root`` (the interpreter's "open" audit event)."""

    def __init__(self):
        self.root, self.seen = None, []
        sys.addaudithook(self._hook)  # hooks cannot be removed: it only looks while ``root`` is set

    def _hook(self, event, args):
        if event == "open" and self.root is not None and args and isinstance(args[0], (str, bytes)) \
                and str(args[0]).startswith(self.root):
            self.seen.append(args[0])


_OPENS = _Opens()


@pytest.fixture
def bait(tmp_path):
    """A would-be MANO folder whose pickle crashed the old reader (issue 13), and a log of any open under it."""
    folder = tmp_path / "bait"
    folder.mkdir()
    (folder / "MANO_RIGHT.pkl").write_bytes(object_scalar_pickle())
    _OPENS.root, _OPENS.seen = str(folder), []
    yield folder
    _OPENS.root = None


@pytest.mark.parametrize("value", ["BAIT", "BAIT/MANO_RIGHT.pkl", 7, None, ["mano"], {"path": "BAIT"}])
def test_a_checkpoint_naming_anything_but_a_kind_is_refused_unread(tmp_path, bait, value):
    value = json.loads(json.dumps(value).replace("BAIT", str(bait)))
    path = _write_raw(tmp_path / "c.npz", read_checkpoint(DEFAULT_CHECKPOINT), hand_model=value)
    for load in (read_checkpoint, load_checkpoint, lambda p: load_checkpoint(p, hand_model=str(bait))):
        with pytest.raises(CheckpointError) as exc:
            load(path)
        assert str(path) in str(exc.value) and "never a file" in str(exc.value)
        assert "--hand-model mano" in str(exc.value)  # what to do with an old checkpoint
    assert _OPENS.seen == []


def test_an_old_checkpoint_with_a_mano_path_is_converted_without_reading_the_path(tmp_path, bait, capsys):
    old = _write_raw(tmp_path / "old.npz", read_checkpoint(DEFAULT_CHECKPOINT), hand_model=str(bait))
    assert main([str(old), str(tmp_path / "bad.npz")]) == 2  # without --hand-model: refused, with the advice
    assert "--hand-model mano" in capsys.readouterr().err and not (tmp_path / "bad.npz").exists()
    assert main([str(old), str(tmp_path / "new.npz"), "--hand-model", "open"]) == 0
    assert read_checkpoint(tmp_path / "new.npz")["config"]["hand_model"] == "open"
    assert load_checkpoint(tmp_path / "new.npz").config == load_checkpoint().config
    assert _OPENS.seen == []
    with pytest.raises(ModelFileError):  # the detector works: reading the bait is seen
        load_hand_model(str(bait), "right")
    assert _OPENS.seen


def test_a_checkpoint_cannot_be_written_naming_a_path(tmp_path, mano_like):
    p = read_checkpoint(DEFAULT_CHECKPOINT)
    with pytest.raises(ValueError, match="never a path"):
        save_checkpoint(tmp_path / "c.npz", p["kind"], {**p["config"], "hand_model": str(mano_like)}, p["state_dict"])
    assert not (tmp_path / "c.npz").exists()


def test_a_mano_trained_image_checkpoint_needs_the_callers_mano_folder(tmp_path, mano_like, capsys):
    """`dahyf train net --mano M` records 'mano' (not M); loading needs M again, and passes it through."""
    torch = pytest.importorskip("torch", reason="the image network needs torch")
    import dahyf
    from dahyf.capture.engine import CaptureError
    from dahyf.cli import main as cli

    out = tmp_path / "run"
    assert cli(["train", "net", "--config", "light_full", "--data", "synthetic", "--synthetic-size", "4",
                "--mano", str(mano_like), "--epochs", "1", "--batch-size", "2", "--steps-per-epoch", "1",
                "--workers", "0", "--device", "cpu", "--out", str(out)]) == 0
    capsys.readouterr()
    ckpt = out / "model.npz"
    saved = read_checkpoint(ckpt)
    assert saved["config"]["hand_model"] == "mano"
    assert str(mano_like) not in json.dumps(saved["config"]) + json.dumps(saved["meta"])

    est = load_checkpoint(ckpt, hand_model=str(mano_like))
    assert est.config.hand_model == "mano" and est.net.hand.num_vertices == 778
    for k, v in saved["state_dict"].items():
        assert torch.equal(est.net.state_dict()[k], torch.from_numpy(v)), k

    for load in (lambda: load_checkpoint(ckpt), lambda: load_checkpoint(ckpt, hand_model="open")):
        with pytest.raises(CheckpointError, match=r"trained with the real MANO.*--mano DIR.*MANO folder"):
            load()
    with pytest.raises(CaptureError, match="--mano DIR"):
        dahyf.load_engine(ckpt, device="cpu")
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        load_checkpoint(ckpt, hand_model=str(tmp_path / "no_such_mano"))

    engine = dahyf.load_engine(ckpt, device="cpu", hand_model=str(mano_like))
    assert engine.hand_model == str(mano_like) and engine.estimator.net.hand.name == str(mano_like)

    # as the trainer used to write it (the --mano path in the config): refused, then repaired by convert
    old = _write_raw(tmp_path / "old.npz", saved, hand_model=str(mano_like))
    with pytest.raises(CheckpointError, match="--hand-model mano"):
        load_checkpoint(old, hand_model=str(mano_like))
    assert main([str(old), str(tmp_path / "new.npz"), "--hand-model", "mano"]) == 0
    assert load_checkpoint(tmp_path / "new.npz", hand_model=str(mano_like)).config == est.config


def test_an_open_checkpoint_runs_with_a_mano_output_hand(mano_like):
    """An 'open' engine is built on the open hand it was trained on; the caller's MANO shapes the output."""
    import dahyf

    engine = dahyf.load_engine(device="cpu", hand_model=str(mano_like))
    assert engine.estimator.hand_model_name == "open"
    assert engine.hand_models(("right",))["right"].num_vertices == 778
