"""`dahyf train net` runs from the command line, writes a loadable checkpoint, and explains bad data folders."""
from __future__ import annotations

from dahyf.cli import main


def test_train_net_cli_synthetic_smoke_run(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "net", "--config", "light_full", "--data", "synthetic", "--synthetic-size", "4",
               "--epochs", "1", "--batch-size", "2", "--steps-per-epoch", "1", "--workers", "0",
               "--device", "cpu", "--out", str(out)])
    assert rc == 0
    assert (out / "model.pt").is_file() and (out / "last.pt").is_file()
    from dahyf.net.checkpoint import load_checkpoint

    est = load_checkpoint(out / "model.pt")
    assert est.needs_crops and est.config.backbone == "light"
    assert '"checkpoint"' in capsys.readouterr().out


def test_train_net_cli_rejects_a_folder_that_is_not_freihand(tmp_path, capsys):
    rc = main(["train", "net", "--config", "light_full", "--dataset", "freihand", "--data", str(tmp_path),
               "--out", str(tmp_path / "run")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "FreiHAND" in err and not (tmp_path / "run" / "model.pt").exists()
