"""A 2-process CPU DDP run (torchrun, gloo) gives the same parameters as one process with the same global batch.

Both runs are in float64: Adam's first steps move each weight by ≈ lr · sign(gradient), so in float32 a
weight whose gradient is at rounding-noise level can step either way depending on the summation order
of the all-reduce; in float64 that noise is ~1e-16, far below Adam's ε.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
torch = pytest.importorskip("torch")

SCRIPT = textwrap.dedent('''
    import sys, torch
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    from dahyf.hand.model import load_hand_model
    from dahyf.train.synthetic_images import SyntheticImages
    from dahyf.train.trainer import train
    sys.path.insert(0, sys.argv[2])
    from ddp_common import CFG
    hand = load_hand_model("open", "right").double()
    res = train(CFG, SyntheticImages(hand, n=8, seed=0, crop_size=112, negatives=2), sys.argv[1], device="cpu", resume=False,
                steps_per_epoch=2, progress=False, hand=hand)
    if torch.distributed.get_rank() == 0:
        torch.save(res["model"].state_dict(), sys.argv[1] + "/ddp_state.pt")
    torch.distributed.destroy_process_group()
''')

COMMON = textwrap.dedent('''
    from dataclasses import replace
    from dahyf.train.configs import get_config, model_config
    CFG = get_config("light_full", epochs=1, batch_size=4, lr=1e-3, num_workers=0, augment=False)
    # a 112-px crop keeps the two float64 runs quick; the architecture is the full light model
    CFG = replace(CFG, model=model_config("full", "light", regressor_width=64, regressor_depth=1, crop_size=112))
''')


@pytest.mark.slow
def test_two_process_gloo_ddp_matches_one_process(tmp_path):
    from dahyf.hand.model import load_hand_model
    from dahyf.train.synthetic_images import SyntheticImages
    from dahyf.train.trainer import train

    (tmp_path / "ddp_common.py").write_text(COMMON)
    (tmp_path / "run_ddp.py").write_text(SCRIPT)
    ddp_out = tmp_path / "ddp"
    ddp_out.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        str(tmp_path / "run_ddp.py"), str(ddp_out), str(tmp_path)],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ddp_state = torch.load(ddp_out / "ddp_state.pt", weights_only=True)

    sys.path.insert(0, str(tmp_path))
    try:
        from ddp_common import CFG
    finally:
        sys.path.remove(str(tmp_path))
    hand = load_hand_model("open", "right").double()
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        res = train(CFG, SyntheticImages(hand, n=8, seed=0, crop_size=112, negatives=2), tmp_path / "single", device="cpu", resume=False,
                    steps_per_epoch=2, progress=False, hand=hand)
        single = res["model"].state_dict()
        torch.manual_seed(CFG.seed)
        from dahyf.net.dahyf_net import DaHyF

        init = DaHyF(CFG.model, hand=hand).state_dict()
    finally:
        torch.set_default_dtype(old)
    moved = max((single[k] - init[k]).abs().max().item() for k in single)
    assert moved > 1e-4  # training really changed the weights
    diff = max((single[k] - ddp_state[k]).abs().max().item() for k in single)
    assert diff < 1e-5, f"DDP and single-process parameters differ by {diff}"


BASELINE_SCRIPT = textwrap.dedent('''
    import sys, torch
    torch.set_num_threads(1)
    from dataclasses import replace
    from dahyf.hand.model import load_hand_model
    from dahyf.train.configs import get_config, model_config
    from dahyf.train.synthetic_images import SyntheticImages
    from dahyf.train.trainer import train
    cfg = get_config("light_full", epochs=1, batch_size=4, lr=1e-3, num_workers=0, augment=False)
    cfg = replace(cfg, model=model_config(sys.argv[2], "light", regressor_width=64, regressor_depth=1, crop_size=112))
    hand = load_hand_model("open", "right")
    train(cfg, SyntheticImages(hand, n=8, seed=0, crop_size=112, negatives=2), sys.argv[1], device="cpu", resume=False,
          steps_per_epoch=2, progress=False, hand=hand)
    torch.distributed.destroy_process_group()
''')


@pytest.mark.slow
@pytest.mark.parametrize("row", ["baseline", "gdm"])
def test_ddp_trains_rows_without_a_joint_head(tmp_path, row):
    """Table 4 rows without a 2-D head leave parameters unused (fine branch, L_2d's log σ²); DDP must cope."""
    (tmp_path / "run.py").write_text(BASELINE_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        str(tmp_path / "run.py"), str(tmp_path / "out"), row],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (tmp_path / "out" / "model.npz").is_file()
