"""ImageNet initialisation (issue 16, fix 2): the paper backbones' state dicts match the published layouts
(timm ``hrnet_w64``, torchvision ``resnet50``; key and shape lists in tests/data/pretrained_layouts, written
by those libraries), and a checkpoint in those layouts fills 100 % of the backbone tensors."""
from __future__ import annotations

from pathlib import Path

import pytest
torch = pytest.importorskip("torch")

from dahyf.net.backbones import build_backbone
from dahyf.net.pretrained import PretrainedError, backbone_keys, load_pretrained, load_pretrained_state, read_state_dict

LAYOUTS = Path(__file__).parent / "data" / "pretrained_layouts"
PUBLISHED = {"hrnet_w64": ("timm_hrnet_w64", {"classifier.weight", "classifier.bias"}),
             "resnet50": ("torchvision_resnet50", {"fc.weight", "fc.bias"})}


def published_layout(name: str) -> dict[str, tuple[int, ...]]:
    out = {}
    for line in (LAYOUTS / f"{name}.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape = line.split()
            out[key] = () if shape == "()" else tuple(int(v) for v in shape.split("x"))
    return out


def _published_state(layout: dict) -> dict[str, torch.Tensor]:
    """A state dict in the published layout whose every tensor is told apart by its value."""
    return {k: (torch.full(s, float(i % 997) / 997) if s else torch.tensor(i, dtype=torch.long))
            for i, (k, s) in enumerate(layout.items())}


@pytest.mark.parametrize("backbone", sorted(PUBLISHED))
def test_backbone_tensors_load_100_percent_from_the_published_layout(backbone):
    name, head = PUBLISHED[backbone]
    layout = published_layout(name)
    bb = build_backbone(backbone)
    mine = {k: tuple(s) for k, s in backbone_keys(bb).items()}
    assert mine == {k: s for k, s in layout.items() if k not in head}  # same keys, same shapes, nothing else
    sd = _published_state(layout)
    report = load_pretrained_state(bb, sd, name)
    assert report.loaded == report.expected == len(mine) and report.fraction == 1.0
    assert set(report.unused) == head
    state = bb.state_dict()
    assert all(torch.equal(state[k], sd[k]) for k in mine)
    # the stride-4 head of ResNet-50 (SimpleBaseline deconvolutions) is not ImageNet's: left at init
    assert all(not k.startswith(tuple(bb.pretrained_prefixes)) for k in state if k not in mine)


def test_torchvision_v1_files_without_batchnorm_counters_still_load_fully(tmp_path):
    layout = published_layout("torchvision_resnet50")
    sd = {k: v for k, v in _published_state(layout).items() if not k.endswith("num_batches_tracked")}
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, tmp_path / "resnet50-v1.pth")  # wrapped, prefixed
    report = load_pretrained(build_backbone("resnet50"), tmp_path / "resnet50-v1.pth")
    assert report.fraction == 1.0 and report.counters_absent == 53 and report.loaded == report.expected


def test_checkpoint_files_are_read_safely_and_bad_ones_explained(tmp_path):
    from safetensors.torch import save_file

    save_file({"a.weight": torch.ones(2, 3)}, tmp_path / "m.safetensors")
    assert torch.equal(read_state_dict(tmp_path / "m.safetensors")["a.weight"], torch.ones(2, 3))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(PretrainedError, match="not a readable checkpoint"):
        read_state_dict(tmp_path / "junk.pth")
    with pytest.raises(PretrainedError, match="not found"):
        read_state_dict(tmp_path / "missing.pth")
    bb = build_backbone("resnet50")
    layout = published_layout("torchvision_resnet50")
    partial = {k: v for k, v in _published_state(layout).items() if not k.startswith("layer4.")}
    with pytest.raises(PretrainedError, match=r"missing .*layer4"):
        load_pretrained_state(bb, partial)
    wide = _published_state(layout) | {"conv1.weight": torch.zeros(32, 3, 7, 7)}
    with pytest.raises(PretrainedError, match="conv1.weight"):
        load_pretrained_state(bb, wide)
    with pytest.raises(PretrainedError, match="no published ImageNet weights"):
        load_pretrained_state(build_backbone("light"), {})
