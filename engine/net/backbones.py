"""Backbones of the DaHyF network (own compact implementations, no hub downloads).

Every backbone maps a (B, 3, 224, 224) crop to two feature maps:

* ``fine``   (B, C_f, 56, 56) — stride 4, where the direction map is fused and the joint maps
  F_k ∈ R^{21×56×56} of SJCP (or the ablation heatmaps) are read;
* ``coarse`` (B, C_c, 7, 7)  — stride 32, pooled (after its own direction-map fusion) for the regressor.

Architectures (facts from the papers, written here from scratch):

* ``hrnet_w64`` — HRNet (Sun et al., CVPR 2019): stem to stride 4, stage 1 of 4 bottlenecks, then
  stages 2/3/4 with 2/3/4 parallel branches (widths 64, 128, 256, 512), 1/4/3 modules of 4 basic
  blocks each, with multi-resolution fusion after each module. fine = highest-resolution branch,
  coarse = lowest-resolution branch.
* ``resnet50`` — ResNet-50 (He et al., CVPR 2016), bottleneck blocks [3, 4, 6, 3]; coarse = conv5
  (2048 × 7 × 7); fine = three 4×4 stride-2 deconvolutions over conv5 (SimpleBaseline, Xiao et al.,
  ECCV 2018), 256 × 56 × 56.
* ``light`` — a small MobileNetV2-style network with inverted residual blocks and GroupNorm (batch-size
  independent: same result in DDP and on one process), for CPU training and tests.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

BACKBONES = ("hrnet_w64", "resnet50", "light")


@dataclass(frozen=True)
class BackboneFeatures:
    """fine : (B, C_f, 56, 56); coarse : (B, C_c, 7, 7) for a 224 crop."""

    fine: torch.Tensor
    coarse: torch.Tensor


def _conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1):
        super().__init__()
        cout = planes * self.expansion
        self.body = nn.Sequential(_conv_bn(cin, planes, 3, stride), _conv_bn(planes, cout, 3, 1, relu=False))
        self.short = None if (stride == 1 and cin == cout) else _conv_bn(cin, cout, 1, stride, relu=False)

    def forward(self, x):
        return F.relu(self.body(x) + (x if self.short is None else self.short(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1):
        super().__init__()
        cout = planes * self.expansion
        self.body = nn.Sequential(_conv_bn(cin, planes, 1), _conv_bn(planes, planes, 3, stride),
                                  _conv_bn(planes, cout, 1, relu=False))
        self.short = None if (stride == 1 and cin == cout) else _conv_bn(cin, cout, 1, stride, relu=False)

    def forward(self, x):
        return F.relu(self.body(x) + (x if self.short is None else self.short(x)))


def _stack(block, cin: int, planes: int, n: int, stride: int = 1) -> nn.Sequential:
    layers = [block(cin, planes, stride)]
    layers += [block(planes * block.expansion, planes) for _ in range(n - 1)]
    return nn.Sequential(*layers)


# ----------------------------------------------------------------------------------------- ResNet-50
class ResNet50(nn.Module):
    """ResNet-50 trunk + SimpleBaseline deconvolution head for the stride-4 map."""

    def __init__(self, deconv_channels: int = 256):
        super().__init__()
        self.stem = nn.Sequential(_conv_bn(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1))
        self.layer1 = _stack(Bottleneck, 64, 64, 3)
        self.layer2 = _stack(Bottleneck, 256, 128, 4, 2)
        self.layer3 = _stack(Bottleneck, 512, 256, 6, 2)
        self.layer4 = _stack(Bottleneck, 1024, 512, 3, 2)
        ups, cin = [], 2048
        for _ in range(3):
            ups += [nn.ConvTranspose2d(cin, deconv_channels, 4, 2, 1, bias=False),
                    nn.BatchNorm2d(deconv_channels), nn.ReLU(inplace=True)]
            cin = deconv_channels
        self.deconv = nn.Sequential(*ups)
        self.fine_channels, self.coarse_channels = deconv_channels, 2048

    def forward(self, x: torch.Tensor) -> BackboneFeatures:
        c5 = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return BackboneFeatures(fine=self.deconv(c5), coarse=c5)


# ----------------------------------------------------------------------------------------- HRNet
class _HRModule(nn.Module):
    """Parallel branches of basic blocks followed by multi-resolution fusion."""

    def __init__(self, widths: list[int], blocks: int = 4):
        super().__init__()
        n = len(widths)
        self.branches = nn.ModuleList(_stack(BasicBlock, w, w, blocks) for w in widths)
        self.fuse = nn.ModuleList()
        for i in range(n):  # output branch
            row = nn.ModuleList()
            for j in range(n):  # input branch
                if j == i:
                    row.append(nn.Identity())
                elif j > i:  # lower resolution → 1×1 conv, upsample
                    row.append(_conv_bn(widths[j], widths[i], 1, relu=False))
                else:  # higher resolution → strided 3×3 convs
                    steps = []
                    for k in range(i - j):
                        last = k == i - j - 1
                        steps.append(_conv_bn(widths[j], widths[i] if last else widths[j], 3, 2, relu=not last))
                    row.append(nn.Sequential(*steps))
            self.fuse.append(row)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [b(x) for b, x in zip(self.branches, xs)]
        out = []
        for i, row in enumerate(self.fuse):
            y = 0
            for j, f in enumerate(row):
                z = f(xs[j])
                if j > i:
                    z = F.interpolate(z, size=xs[i].shape[-2:], mode="nearest")
                y = y + z
            out.append(F.relu(y))
        return out


class HRNet(nn.Module):
    """HRNet-W{width}: 4 stages, widths (w, 2w, 4w, 8w), modules (1, 1, 4, 3)."""

    def __init__(self, width: int = 64, modules: tuple[int, int, int] = (1, 4, 3), blocks: int = 4):
        super().__init__()
        widths = [width * 2**k for k in range(4)]
        self.stem = nn.Sequential(_conv_bn(3, 64, 3, 2), _conv_bn(64, 64, 3, 2))
        self.layer1 = _stack(Bottleneck, 64, 64, 4)
        self.transitions = nn.ModuleList()
        self.stages = nn.ModuleList()
        prev = [256]
        for s, n_mod in enumerate(modules, start=2):
            cur = widths[:s]
            trans = nn.ModuleList()
            for i, w in enumerate(cur):
                if i < len(prev):
                    trans.append(nn.Identity() if prev[i] == w else _conv_bn(prev[i], w, 3))
                else:  # new lower-resolution branch from the last existing one
                    trans.append(_conv_bn(prev[-1], w, 3, 2))
            self.transitions.append(trans)
            self.stages.append(nn.Sequential(*[_HRModule(cur, blocks) for _ in range(n_mod)]))
            prev = cur
        self.fine_channels, self.coarse_channels = widths[0], widths[3]

    def forward(self, x: torch.Tensor) -> BackboneFeatures:
        xs = [self.layer1(self.stem(x))]
        for trans, stage in zip(self.transitions, self.stages):
            xs = [t(xs[i] if i < len(xs) else xs[-1]) for i, t in enumerate(trans)]
            for module in stage:
                xs = module(xs)
        return BackboneFeatures(fine=xs[0], coarse=xs[-1])


# ----------------------------------------------------------------------------------------- light
def _gn(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, c), c)


class _InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int = 4):
        super().__init__()
        hid = cin * expand
        self.body = nn.Sequential(
            nn.Conv2d(cin, hid, 1, bias=False), _gn(hid), nn.ReLU6(inplace=True),
            nn.Conv2d(hid, hid, 3, stride, 1, groups=hid, bias=False), _gn(hid), nn.ReLU6(inplace=True),
            nn.Conv2d(hid, cout, 1, bias=False), _gn(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class LightBackbone(nn.Module):
    """A ~0.6 M-parameter CPU backbone: stride-4 map (48 ch, with the stride-8 map upsampled in), stride-32 map (192 ch)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 24, 3, 2, 1, bias=False), _gn(24), nn.ReLU6(inplace=True))  # 112
        self.s4 = nn.Sequential(_InvertedResidual(24, 32, 2), _InvertedResidual(32, 32, 1))  # 56
        self.s8 = nn.Sequential(_InvertedResidual(32, 64, 2), _InvertedResidual(64, 64, 1))  # 28
        self.s16 = nn.Sequential(_InvertedResidual(64, 96, 2), _InvertedResidual(96, 96, 1))  # 14
        self.s32 = nn.Sequential(_InvertedResidual(96, 192, 2), _InvertedResidual(192, 192, 1))  # 7
        self.lateral = nn.Conv2d(64, 48, 1)
        self.fine_proj = nn.Sequential(nn.Conv2d(32, 48, 3, 1, 1, bias=False), _gn(48), nn.ReLU(inplace=True))
        self.fine_channels, self.coarse_channels = 48, 192

    def forward(self, x: torch.Tensor) -> BackboneFeatures:
        f4 = self.s4(self.stem(x))
        f8 = self.s8(f4)
        c = self.s32(self.s16(f8))
        fine = self.fine_proj(f4) + F.interpolate(self.lateral(f8), size=f4.shape[-2:], mode="bilinear",
                                                  align_corners=False)
        return BackboneFeatures(fine=fine, coarse=c)


def build_backbone(name: str) -> nn.Module:
    """Backbone by name: 'hrnet_w64', 'resnet50' or 'light'. Each has ``fine_channels`` and ``coarse_channels``."""
    if name == "hrnet_w64":
        return HRNet(64)
    if name == "resnet50":
        return ResNet50()
    if name == "light":
        return LightBackbone()
    if name.startswith("hrnet_w") and name[7:].isdigit():
        return HRNet(int(name[7:]))
    raise ValueError(f"unknown backbone {name!r}; choose one of {BACKBONES}")
