"""Regenerate the published state-dict layouts and check our backbones against the real libraries.

Two environments, because timm / torchvision do not install beside this project's torch 2.13.0 CPU:

1. in a scratch venv with ``torch==2.14.1 torchvision==0.29.1 timm safetensors`` (not a project dependency)::

       python published_check.py dump OUT_DIR

   writes the key/shape lists (``timm_hrnet_w64.txt``, ``torchvision_resnet50.txt``, as in this folder),
   randomly initialised weights in the published files' formats (seeded; BatchNorm statistics randomised
   so that a misplaced running mean shows) and the libraries' own feature maps for one input;
2. in the project's venv::

       python published_check.py check OUT_DIR

   loads those files with ``dahyf.net.pretrained.load_pretrained`` and compares our backbones' features
   with the libraries' (timm ``forward_features`` and stage-4 branches; torchvision conv5).
"""
from __future__ import annotations

import sys
from pathlib import Path


def _write_layout(model, name: str, source: str, out: Path) -> None:
    with open(out / f"{name}.txt", "w") as f:
        f.write(f"# State-dict layout of {name}: one 'key shape' per line.\n")
        f.write(f"# Generated with {source} in a scratch environment (not a dependency of this project).\n")
        for k, v in model.state_dict().items():
            f.write(f"{k} {'x'.join(map(str, v.shape)) or '()'}\n")


def dump(out: Path) -> None:
    import timm
    import torch
    import torchvision
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    x = torch.randn(2, 3, 224, 224)
    hr = timm.create_model("hrnet_w64", pretrained=False).eval()
    rn = torchvision.models.resnet50(weights=None).eval()
    for m in list(hr.modules()) + list(rn.modules()):
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    _write_layout(hr, "timm_hrnet_w64", f"timm {timm.__version__} timm.create_model('hrnet_w64').state_dict(), "
                                        f"torch {torch.__version__}", out)
    _write_layout(rn, "torchvision_resnet50", f"torchvision {torchvision.__version__} torchvision.models.resnet50("
                                              f"weights=None).state_dict(), torch {torch.__version__}", out)
    with torch.no_grad():
        stem = hr.act2(hr.bn2(hr.conv2(hr.act1(hr.bn1(hr.conv1(x))))))
        branches = hr.stages(stem)
        final = hr.forward_features(x)
        c5 = rn.layer4(rn.layer3(rn.layer2(rn.layer1(rn.maxpool(rn.relu(rn.bn1(rn.conv1(x))))))))
    save_file({k: v.contiguous() for k, v in hr.state_dict().items()}, out / "hrnet_w64_random.safetensors")
    torch.save(rn.state_dict(), out / "resnet50_random.pth")
    torch.save({"x": x, "hrnet_final": final, "hrnet_branch0": branches[0], "resnet_c5": c5}, out / "reference.pt")


def check(out: Path) -> None:
    import torch

    from dahyf.net.backbones import build_backbone
    from dahyf.net.pretrained import load_pretrained

    ref = torch.load(out / "reference.pt")
    for name, f, pairs in (("hrnet_w64", "hrnet_w64_random.safetensors", (("coarse", "hrnet_final"), ("fine", "hrnet_branch0"))),
                           ("resnet50", "resnet50_random.pth", (("coarse", "resnet_c5"),))):
        bb = build_backbone(name).eval()
        print(load_pretrained(bb, out / f).summary())
        with torch.no_grad():
            feats = bb(ref["x"])
        for ours, theirs in pairs:
            diff = (getattr(feats, ours) - ref[theirs]).abs().max().item()
            print(f"  {name} {ours} vs the library's {theirs}: max |difference| {diff:.3g} "
                  f"(values up to {ref[theirs].abs().max().item():.3g})")


if __name__ == "__main__":
    {"dump": dump, "check": check}[sys.argv[1]](Path(sys.argv[2]))
