"""`dahyf bench gpu --tiny --json`: the GPU check's code path on a CPU in seconds — both paper backbones
train and infer, DDP steps, a synthetic training run whose loss falls, a capture of the sample clip."""
from __future__ import annotations

import json

import pytest
torch = pytest.importorskip("torch")

from dahyf.cli import main


@pytest.mark.slow
def test_gpu_check_runs_tiny_on_the_cpu(tmp_path, capsys):
    out = tmp_path / "gpu.json"
    threads = torch.get_num_threads()
    try:
        rc = main(["bench", "gpu", "--tiny", "--json", "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report == json.loads(out.read_text())
    assert report["tiny"] and report["device"] == "cpu" and report["ok"]
    rows = {r["backbone"]: r for r in report["backbones"]}
    assert set(rows) == {"resnet50", "hrnet_w8"}  # the HRNet code at width 8 (the full check: W64)
    assert all(r["forward_crops_per_s"] > 0 and r["train_crops_per_s"] > 0 for r in rows.values())
    assert report["ddp"]["world_size"] == 1 and report["ddp"]["train_crops_per_s"] > 0
    t = report["training"]
    assert t["loss_falls"] and t["task_loss_last_epoch"] < t["task_loss_first_epoch"] and t["contrastive_in_last_epoch"]
    c = report["capture"]
    assert c["returncode"] == 0 and c["frames"] == 4 and c["pa_mpjpe_mm"] < 20
    assert set(report["seconds"]) == {"backbones", "ddp", "training", "capture", "total"}


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_check_meets_the_throughput_goals():
    from dahyf.train.bench_gpu import run_gpu_check

    report = run_gpu_check(tiny=False, device="cuda")
    assert report["ok"], json.dumps(report, indent=2)
