"""`dahyf train net` runs from the command line, writes a loadable checkpoint, and explains bad data folders."""
from __future__ import annotations

import pytest

from dahyf.cli import main

pytest.importorskip("torch", reason="training needs torch (not in the Python 3.13 tier: no CPU wheel)")


def test_train_net_cli_synthetic_smoke_run(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "net", "--config", "light_full", "--data", "synthetic", "--synthetic-size", "4",
               "--epochs", "1", "--batch-size", "2", "--steps-per-epoch", "1", "--workers", "0",
               "--device", "cpu", "--out", str(out)])
    assert rc == 0
    assert (out / "model.npz").is_file() and (out / "last.pt").is_file()
    from dahyf.net.checkpoint import load_checkpoint

    est = load_checkpoint(out / "model.npz")
    assert est.needs_crops and est.config.backbone == "light"
    assert '"checkpoint"' in capsys.readouterr().out


def test_train_net_cli_rejects_a_folder_that_is_not_freihand(tmp_path, capsys, mano_like):
    rc = main(["train", "net", "--config", "light_full", "--dataset", "freihand", "--data", str(tmp_path),
               "--mano", str(mano_like), "--out", str(tmp_path / "run")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "FreiHAND" in err and not (tmp_path / "run" / "model.npz").exists()


def test_dataset_training_requires_real_mano(tmp_path, capsys):
    rc = main(["train", "net", "--config", "light_full", "--dataset", "ho3d", "--data", str(tmp_path),
               "--out", str(tmp_path / "run")])
    assert rc == 2
    assert "--mano" in capsys.readouterr().err


def test_training_with_l_c_refuses_a_set_without_negatives(tmp_path):
    import pytest

    from dahyf.hand.model import load_hand_model
    from dahyf.train.configs import get_config
    from dahyf.train.synthetic_images import SyntheticImages
    from dahyf.train.trainer import train

    hand = load_hand_model("open", "right")
    cfg = get_config("light_full", epochs=1, batch_size=2, num_workers=0)
    with pytest.raises(ValueError, match="--hanco"):
        train(cfg, SyntheticImages(hand, n=4, negatives=0), tmp_path, device="cpu", progress=False, hand=hand)
    assert not (tmp_path / "model.npz").exists()
