"""Training for real: the full model (light backbone) overfits a small synthetic set, and resumes."""
from __future__ import annotations

from dataclasses import replace

import pytest
torch = pytest.importorskip("torch")

from dahyf.hand.model import load_hand_model
from dahyf.net.dahyf_net import DaHyF
from dahyf.train.configs import get_config
from dahyf.train.synthetic_images import SyntheticImages
from dahyf.train.trainer import evaluate_model, train


@pytest.mark.slow
def test_full_model_overfits_a_small_synthetic_set(tmp_path):
    hand = load_hand_model("open", "right")
    ds = SyntheticImages(hand, n=4, seed=1, crop_size=112, negatives=4)  # one batch of 8: 4 hands, 4 non-hands
    # the recipe's schedule in miniature: L_c only for the last epochs (here the last 5 of 40)
    cfg = get_config("light_full", epochs=40, lr=2e-3, batch_size=8, num_workers=0, augment=False,
                     contrastive_epochs=5)
    # the full light model at a 112-px crop (quarter of the compute of 224 px on the shared test cores)
    cfg = replace(cfg, model=replace(cfg.model, crop_size=112))
    torch.manual_seed(cfg.seed)
    before = evaluate_model(DaHyF(cfg.model, hand=hand), ds)
    res = train(cfg, ds, tmp_path, device="cpu", resume=False, progress=False, hand=hand, checkpoint_every=1000,
                val_dataset=ds, val_every=1000)
    hist = res["history"]
    assert len(hist) == 40
    first = hist[0]["task_sum"]
    before_lc = hist[-6]["task_sum"]  # L_c pulls the 2-D joints of the non-hand crops too: the task loss rises a little
    last = sum(h["task_sum"] for h in hist[-3:]) / 3
    assert before_lc < first / 5 and last < first / 4, f"task loss {first:.3f} → {before_lc:.3f} → {last:.3f}"
    after = evaluate_model(res["model"], ds)
    assert hist[-1]["val_pa_mpjpe_mm"] == pytest.approx(after["pa_mpjpe_mm"], rel=1e-6)
    assert after["pa_mpjpe_mm"] < 0.9 * before["pa_mpjpe_mm"], (before, after)
    assert after["epe2d_px"] < 0.5 * before["epe2d_px"], (before, after)
    # L_c is off at first and on for the last contrastive_epochs
    assert "c" not in hist[0] and "c" in hist[-1] and "c" not in hist[-6]
    assert hist[-1]["c"] < hist[-5]["c"]  # the contrastive loss itself falls
    # resume: a finished run continues from last.pt (nothing left to do), and the checkpoint loads
    again = train(cfg, ds, tmp_path, device="cpu", resume=True, progress=False, hand=hand)
    assert len(again["history"]) == 40
    from dahyf.net.checkpoint import load_checkpoint

    est = load_checkpoint(res["checkpoint"])
    assert est.config == cfg.model
