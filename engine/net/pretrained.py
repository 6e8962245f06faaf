"""ImageNet initialisation of the paper backbones from published checkpoints (``--pretrained PATH``).

The backbones of :mod:`dahyf.net.backbones` use the module names of the published ImageNet weights,
so a checkpoint loads key for key:

* HRNet-W64 — timm's ``hrnet_w64`` (``hrnet_w64.ms_in1k``: ``model.safetensors`` or ``pytorch_model.bin``);
  everything but ``classifier.*`` is backbone;
* ResNet-50 — torchvision's ``resnet50`` (``IMAGENET1K_V1`` / ``V2`` ``.pth``); everything but ``fc.*``.
  The V1 file predates BatchNorm's ``num_batches_tracked`` counters: those are optional.

Nothing is downloaded: give the file. ``.safetensors`` files are read with the ``safetensors``
package, anything else with ``torch.load(weights_only=True)`` (no code runs on load).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import DaHyFUserError

#: Wrappers some training scripts put around a state dict, and key prefixes they add.
_WRAPPER_KEYS = ("state_dict", "model", "module")
_KEY_PREFIXES = ("module.", "model.", "backbone.")


class PretrainedError(DaHyFUserError, ValueError):
    """A pretrained checkpoint that cannot initialise the backbone."""


@dataclass(frozen=True)
class PretrainedReport:
    """What :func:`load_pretrained` did.

    loaded / expected : backbone tensors filled from the file / backbone tensors an ImageNet checkpoint holds.
    unused : file keys that are not backbone tensors (the ImageNet classifier).
    counters_absent : BatchNorm ``num_batches_tracked`` counters the file lacks (left at 0).
    """

    path: str
    loaded: int
    expected: int
    unused: tuple[str, ...] = field(default=())
    counters_absent: int = 0

    @property
    def fraction(self) -> float:
        return self.loaded / max(self.expected, 1)

    def summary(self) -> str:
        return (f"{self.path}: {self.loaded}/{self.expected} backbone tensors loaded ({100 * self.fraction:.1f} %); "
                f"unused in the file: {', '.join(self.unused) or 'none'}")

    def to_dict(self) -> dict:
        return {"path": self.path, "loaded": self.loaded, "expected": self.expected,
                "percent": round(100 * self.fraction, 2), "unused": list(self.unused),
                "counters_absent": self.counters_absent}


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file (``.safetensors``, or a torch file holding a state dict), on the CPU."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise PretrainedError(f"pretrained checkpoint not found: {path}. Give the ImageNet weights file "
                              "(timm hrnet_w64 model.safetensors / pytorch_model.bin, or torchvision resnet50 .pth).")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path), device="cpu")
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a file that is not a checkpoint
        raise PretrainedError(f"{path} is not a readable checkpoint ({type(e).__name__}: {e})") from None
    while isinstance(sd, dict) and len(sd) == 1 and next(iter(sd)) in _WRAPPER_KEYS:
        sd = next(iter(sd.values()))
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise PretrainedError(f"{path} does not hold a state dict of tensors")
    for prefix in _KEY_PREFIXES:
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def backbone_keys(backbone: nn.Module) -> dict[str, torch.Size]:
    """Keys and shapes of the backbone tensors an ImageNet checkpoint holds (``backbone.pretrained_prefixes``)."""
    prefixes = tuple(getattr(backbone, "pretrained_prefixes", ()))
    if not prefixes:
        raise PretrainedError(f"{type(backbone).__name__} has no published ImageNet weights; "
                              "--pretrained is for the 'hrnet_w64' and 'resnet50' backbones")
    return {k: v.shape for k, v in backbone.state_dict().items() if k.startswith(prefixes)}


def load_pretrained(backbone: nn.Module, path: str | Path) -> PretrainedReport:
    """Initialise ``backbone`` from an ImageNet checkpoint file; every backbone tensor must be in it.

    Raises
    ------
    PretrainedError
        An unreadable file, missing backbone tensors or shape mismatches (a checkpoint of another
        architecture or width), naming the first few.
    """
    return load_pretrained_state(backbone, read_state_dict(path), str(path))


def load_pretrained_state(backbone: nn.Module, sd: dict[str, torch.Tensor], path: str = "state dict") -> PretrainedReport:
    """:func:`load_pretrained` from tensors already read (``path`` only names them in messages)."""
    want = backbone_keys(backbone)
    counters = [k for k in want if k.endswith("num_batches_tracked") and k not in sd]
    missing = [k for k in want if k not in sd and k not in counters]
    wrong = [f"{k} {tuple(sd[k].shape)} (expected {tuple(s)})" for k, s in want.items() if k in sd and sd[k].shape != s]
    if missing or wrong:
        what = f"{len(missing)} of {len(want)} backbone tensors missing (first: {', '.join(missing[:3])})" if missing \
            else f"{len(wrong)} tensors of another shape (first: {', '.join(wrong[:3])})"
        raise PretrainedError(f"{path}: {what}. Expected timm's hrnet_w64 or torchvision's resnet50 ImageNet layout "
                              f"for a {type(backbone).__name__} backbone.")
    backbone.load_state_dict({k: sd[k] for k in want if k in sd}, strict=False)
    now = backbone.state_dict()  # count what really arrived, not what was offered
    loaded = sum(1 for k in want if k in sd and torch.equal(now[k].cpu(), sd[k].to(now[k].dtype)))
    unused = tuple(sorted(k for k in sd if k not in want))
    return PretrainedReport(path, loaded=loaded, expected=len(want) - len(counters), unused=unused,
                            counters_absent=len(counters))
