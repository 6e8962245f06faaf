"""Backbones of the DaHyF network (own compact implementations, no hub downloads).

Every backbone maps a (B, 3, s_p, s_p) crop (s_p = 224) to two feature maps:

* ``fine``   (B, C_f, s_p/4, s_p/4) — stride 4: the map the direction map is fused with for the
  2-D joint head (SJCP's F_k ∈ R^{21×56×56}, or the ablation heatmaps);
* ``coarse`` (B, C_c, s_p/32, s_p/32) — stride 32: the map fused with the direction map for the
  regressor branch.

Architectures (facts from the papers; module names follow the published ImageNet checkpoints so
that ``dahyf.net.pretrained`` loads them key for key):

* ``hrnet_w64`` — HRNet-W64 (Sun et al., CVPR 2019; Wang et al., TPAMI 2020) in timm's
  ``hrnet_w64`` layout: stem of two stride-2 3×3 convs, stage 1 of 4 bottlenecks, stages 2/3/4 with
  2/3/4 parallel branches (widths 64, 128, 256, 512) of 1/4/3 modules of 4 basic blocks with
  multi-resolution fusion, then the ImageNet classification neck (one bottleneck per branch to
  128/256/512/1024 channels, strided 3×3 convs merging them, a 1×1 conv to 2048).
  fine = the highest-resolution branch (64 × 56 × 56); coarse = the neck's output (2048 × 7 × 7).
* ``resnet50`` — ResNet-50 (He et al., CVPR 2016; stride on the 3×3 conv) in torchvision's layout;
  coarse = conv5 (2048 × 7 × 7); fine = three 4×4 stride-2 deconvolutions over conv5
  (SimpleBaseline, Xiao et al., ECCV 2018), 256 × 56 × 56 (not part of the ImageNet checkpoint).
* ``light`` — a small MobileNetV2-style network with inverted residual blocks and GroupNorm (batch-size
  independent: same result in DDP and on one process), for CPU training and tests.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

BACKBONES = ("hrnet_w64", "resnet50", "light")
#: Channels of the 2048-d ImageNet feature map both paper backbones end with (stride 32).
IMAGENET_FEATURES = 2048


@dataclass(frozen=True)
class BackboneFeatures:
    """fine : (B, C_f, s_p/4, s_p/4); coarse : (B, C_c, s_p/32, s_p/32)."""

    fine: torch.Tensor
    coarse: torch.Tensor


def _conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, relu: bool = True, bias: bool = False) -> nn.Sequential:
    """Conv (index 0) → BatchNorm (1) [→ ReLU (2)]: the checkpoints' ``Sequential(conv, bn[, relu])``."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=bias), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _downsample(cin: int, cout: int, stride: int) -> nn.Sequential | None:
    """The shortcut projection (1×1 conv + BN, ``downsample.0`` / ``downsample.1``) when shapes change."""
    return None if (stride == 1 and cin == cout) else _conv_bn(cin, cout, 1, stride, relu=False)


class BasicBlock(nn.Module):
    """Two 3×3 convs with a shortcut (``conv1``, ``bn1``, ``conv2``, ``bn2``, ``downsample``)."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = _downsample(cin, planes, stride)

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    """1×1 → 3×3 (stride) → 1×1 ×4 with a shortcut (``conv1..3``, ``bn1..3``, ``downsample``)."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1):
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = _downsample(cin, cout, stride)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


def _stack(block, cin: int, planes: int, n: int, stride: int = 1) -> nn.Sequential:
    layers = [block(cin, planes, stride)]
    layers += [block(planes * block.expansion, planes) for _ in range(n - 1)]
    return nn.Sequential(*layers)


# ----------------------------------------------------------------------------------------- ResNet-50
class ResNet50(nn.Module):
    """ResNet-50 trunk (torchvision layout) + SimpleBaseline deconvolutions for the stride-4 map."""

    #: Module prefixes that hold ImageNet weights (``dahyf.net.pretrained``).
    pretrained_prefixes = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.")

    def __init__(self, deconv_channels: int = 256):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = _stack(Bottleneck, 64, 64, 3)
        self.layer2 = _stack(Bottleneck, 256, 128, 4, 2)
        self.layer3 = _stack(Bottleneck, 512, 256, 6, 2)
        self.layer4 = _stack(Bottleneck, 1024, 512, 3, 2)
        ups, cin = [], IMAGENET_FEATURES
        for _ in range(3):
            ups += [nn.ConvTranspose2d(cin, deconv_channels, 4, 2, 1, bias=False),
                    nn.BatchNorm2d(deconv_channels), nn.ReLU(inplace=True)]
            cin = deconv_channels
        self.deconv = nn.Sequential(*ups)
        self.fine_channels, self.coarse_channels = deconv_channels, IMAGENET_FEATURES

    def forward(self, x: torch.Tensor) -> BackboneFeatures:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        c5 = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return BackboneFeatures(fine=self.deconv(c5), coarse=c5)


# ----------------------------------------------------------------------------------------- HRNet
class HRModule(nn.Module):
    """Parallel branches of 4 basic blocks, then multi-resolution fusion (``branches``, ``fuse_layers``)."""

    def __init__(self, widths: list[int], blocks: int = 4):
        super().__init__()
        n = len(widths)
        self.branches = nn.ModuleList(_stack(BasicBlock, w, w, blocks) for w in widths)
        self.fuse_layers = nn.ModuleList()
        for i in range(n):  # output branch
            row = nn.ModuleList()
            for j in range(n):  # input branch
                if j == i:
                    row.append(nn.Identity())
                elif j > i:  # lower resolution → 1×1 conv + BN, then nearest upsampling (in forward)
                    row.append(_conv_bn(widths[j], widths[i], 1, relu=False))
                else:  # higher resolution → i − j strided 3×3 convs, ReLU between them
                    steps = [_conv_bn(widths[j], widths[i] if k == i - j - 1 else widths[j], 3, 2, relu=k < i - j - 1)
                             for k in range(i - j)]
                    row.append(nn.Sequential(*steps))
            self.fuse_layers.append(row)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [b(x) for b, x in zip(self.branches, xs)]
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = 0
            for j, f in enumerate(row):
                z = f(xs[j])
                if j > i:
                    z = F.interpolate(z, size=xs[i].shape[-2:], mode="nearest")
                y = y + z
            out.append(F.relu(y))
        return out


def _transition(prev: list[int], cur: list[int]) -> nn.ModuleList:
    """Between stages: adapt existing branches (Identity or 3×3 conv) and grow a new one from the last."""
    layers = nn.ModuleList()
    for i, w in enumerate(cur):
        if i < len(prev):
            layers.append(nn.Identity() if prev[i] == w else _conv_bn(prev[i], w, 3))
        else:
            layers.append(nn.Sequential(_conv_bn(prev[-1], w, 3, 2)))
    return layers


class HRNet(nn.Module):
    """HRNet-W{width} with the ImageNet classification neck, timm's ``hrnet_w{width}`` layout."""

    pretrained_prefixes = ("conv1.", "bn1.", "conv2.", "bn2.", "layer1.", "transition", "stage",
                           "incre_modules.", "downsamp_modules.", "final_layer.")
    #: Bottleneck widths of the classification neck, per branch.
    HEAD_PLANES = (32, 64, 128, 256)

    def __init__(self, width: int = 64, modules: tuple[int, int, int] = (1, 4, 3), blocks: int = 4):
        super().__init__()
        widths = [width * 2**k for k in range(4)]
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.layer1 = _stack(Bottleneck, 64, 64, 4)
        prev = [64 * Bottleneck.expansion]
        for s, n_mod in enumerate(modules, start=2):
            cur = widths[:s]
            setattr(self, f"transition{s - 1}", _transition(prev, cur))
            setattr(self, f"stage{s}", nn.Sequential(*[HRModule(cur, blocks) for _ in range(n_mod)]))
            prev = cur
        head = [p * Bottleneck.expansion for p in self.HEAD_PLANES]
        self.incre_modules = nn.ModuleList(_stack(Bottleneck, w, p, 1) for w, p in zip(widths, self.HEAD_PLANES))
        self.downsamp_modules = nn.ModuleList(_conv_bn(head[i], head[i + 1], 3, 2, bias=True) for i in range(3))
        self.final_layer = _conv_bn(head[3], IMAGENET_FEATURES, 1, bias=True)
        self.num_stages = len(modules) + 1
        self.fine_channels, self.coarse_channels = widths[0], IMAGENET_FEATURES

    def forward(self, x: torch.Tensor) -> BackboneFeatures:
        x = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        xs = [self.layer1(x)]
        for s in range(2, self.num_stages + 1):
            trans = getattr(self, f"transition{s - 1}")
            xs = [t(xs[i] if i < len(xs) else xs[-1]) for i, t in enumerate(trans)]
            for module in getattr(self, f"stage{s}"):
                xs = module(xs)
        y = self.incre_modules[0](xs[0])
        for i in range(1, len(xs)):
            y = self.incre_modules[i](xs[i]) + self.downsamp_modules[i - 1](y)
        return BackboneFeatures(fine=xs[0], coarse=self.final_layer(y))


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

    pretrained_prefixes: tuple[str, ...] = ()

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
    """Backbone by name: 'hrnet_w64', 'resnet50' or 'light'. Each has ``fine_channels``, ``coarse_channels``
    and ``pretrained_prefixes`` (the state-dict prefixes an ImageNet checkpoint fills)."""
    if name == "hrnet_w64":
        return HRNet(64)
    if name == "resnet50":
        return ResNet50()
    if name == "light":
        return LightBackbone()
    if name.startswith("hrnet_w") and name[7:].isdigit():
        return HRNet(int(name[7:]))
    raise ValueError(f"unknown backbone {name!r}; choose one of {BACKBONES}")
