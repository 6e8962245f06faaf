"""`dahyf bench network --json` reports crops/s per backbone and batch, and skips what would overrun the budget."""
from __future__ import annotations

import json

import pytest

from dahyf.cli import main


def test_bench_network_json_and_markdown(tmp_path, capsys):
    pytest.importorskip("torch", reason="the network benchmark runs the torch network (not in the Python 3.13 tier)")
    md = tmp_path / "network.md"
    rc = main(["bench", "network", "--backbones", "light", "--batches", "1", "2", "--device", "cpu",
               "--budget", "0.5", "--json", "--md", str(md)])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    rows = report["results"]
    assert [(r["backbone"], r["batch"], r["device"]) for r in rows] == [("light", 1, "cpu"), ("light", 2, "cpu")]
    assert rows[0]["crops_per_s"] > 0 and rows[0]["iterations"] >= 1
    assert report["devices"]["cpu"]
    text = md.read_text()
    assert "| light | 1 |" in text and report["devices"]["cpu"] in text


@pytest.mark.needs_torch
def test_bench_network_skips_forwards_beyond_the_budget():
    from dahyf.eval.bench_network import bench_one

    row = bench_one("hrnet_w64", 128, "cpu", budget_s=1.0, est_per_crop_s=0.5)
    assert row["crops_per_s"] is None and "skipped" in row["note"]
