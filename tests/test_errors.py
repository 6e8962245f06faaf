"""Every error meant for the user derives from one base class, so front ends show its message as is."""
from __future__ import annotations

import pytest

from dahyf.errors import DaHyFUserError


@pytest.mark.parametrize("module, name", [
    ("dahyf.capture.errors", "CaptureError"),
    ("dahyf.hand.mano_io", "ModelFileError"),
    ("dahyf.net.checkpoint", "CheckpointError"),
    pytest.param("dahyf.train.datasets", "DatasetLayoutError", marks=pytest.mark.needs_torch),
    ("rigs.presets", "PresetError"),
])
def test_user_errors_share_one_base(module, name):
    import importlib

    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, DaHyFUserError)


def test_cli_shows_a_user_error_as_its_message(tmp_path, capsys):
    from dahyf.cli import main

    missing = tmp_path / "nope"
    rc = main(["capture", str(tmp_path / "clip.mp4"), "-o", str(tmp_path / "t.npz"), "--mano", str(missing)])
    err = capsys.readouterr().err
    assert rc == 1
    assert "dahyf capture: error: Cannot load the right hand model" in err and "Traceback" not in err
