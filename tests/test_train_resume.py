"""An interrupted run resumed from ``last.pt`` ends with the same parameters as an uninterrupted one
(weights, optimiser, scheduler and epoch restored; the sampler reshuffles by epoch)."""
from __future__ import annotations

from dataclasses import replace

import pytest
torch = pytest.importorskip("torch")
from torch.utils.data import Dataset  # noqa: E402

from dahyf.hand.model import load_hand_model
from dahyf.train.configs import get_config, model_config
from dahyf.train.synthetic_images import SyntheticImages
from dahyf.train.trainer import train


class _Interrupted(Exception):
    pass


class _StopAfter(Dataset):
    """``ds`` that raises after ``n`` reads (a run killed mid-epoch)."""

    def __init__(self, ds, n):
        self.ds, self.n, self.reads = ds, n, 0
        self.num_negatives = ds.num_negatives

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        self.reads += 1
        if self.reads > self.n:
            raise _Interrupted
        return self.ds[i]


@pytest.mark.slow
def test_resume_continues_exactly(tmp_path):
    cfg = get_config("light_full", epochs=3, batch_size=4, lr=1e-3, num_workers=0, augment=False)
    cfg = replace(cfg, lr_milestones=(1,), contrastive_epochs=1,
                  model=model_config("full", "light", regressor_width=64, regressor_depth=1, crop_size=112))
    hand = load_hand_model("open", "right")
    ds = SyntheticImages(hand, n=8, seed=0, crop_size=112, negatives=2)
    ref = train(cfg, ds, tmp_path / "ref", device="cpu", resume=False, progress=False, hand=hand)
    with pytest.raises(_Interrupted):  # epoch 1 (8 samples) done, killed during epoch 2
        train(cfg, _StopAfter(ds, 8 + 4), tmp_path / "run", device="cpu", resume=False, progress=False, hand=hand)
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["epoch"] == 1
    res = train(cfg, ds, tmp_path / "run", device="cpu", resume=True, progress=False, hand=hand)
    assert [h["epoch"] for h in res["history"]] == [1, 2, 3]
    assert [h["lr"] for h in res["history"]] == pytest.approx([1e-4, 1e-4, 1e-4])  # ÷10 after epoch 1, once
    a, b = ref["model"].state_dict(), res["model"].state_dict()
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6
