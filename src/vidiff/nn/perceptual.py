"""LPIPS perceptual distance (Zhang et al. 2018, VGG-16 variant), loaded from a local file.

No weights are downloaded. ``load_perceptual(path)`` reads a ``.safetensors`` file holding the
VGG-16 convolution weights (``features.{i}.weight/bias`` as in torchvision's ``vgg16().features``)
and LPIPS's linear heads (``lin{k}.weight``, shape ``(1, C_k, 1, 1)``), e.g. converted once with
``safetensors.torch.save_file`` from the ``lpips`` package's state dicts. Without a file it
returns ``None`` and the caller turns the term off (and says so).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["LPIPS", "load_perceptual"]

# VGG-16 "features": conv channel widths, "M" = max-pool; LPIPS taps relu1_2 .. relu5_3
_VGG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
_TAPS = (3, 8, 15, 22, 29)  # indices (in torchvision's features) of the tapped ReLUs
_WIDTHS = (64, 128, 256, 512, 512)


class LPIPS(nn.Module):
    """``forward(x, y) -> (B,)`` distances for images ``(B, 3, H, W)`` or videos
    ``(B, 3, F, H, W)`` (per-frame, averaged) in ``[-1, 1]``."""

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in _VGG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=False)]
                cin = v
        self.features = nn.Sequential(*layers)
        for k, c in enumerate(_WIDTHS):
            self.register_module(f"lin{k}", nn.Conv2d(c, 1, 1, bias=False))
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188])[None, :, None, None])
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450])[None, :, None, None])

    def _feats(self, x: Tensor) -> list[Tensor]:
        h = (x - self.shift) / self.scale
        out = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in _TAPS:
                out.append(h / (h.norm(dim=1, keepdim=True) + 1e-10))
            if i >= _TAPS[-1]:
                break
        return out

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if x.ndim == 5:
            B = x.shape[0]
            d = self(x.transpose(1, 2).flatten(0, 1), y.transpose(1, 2).flatten(0, 1))
            return d.reshape(B, -1).mean(1)
        total = 0.0
        for k, (fx, fy) in enumerate(zip(self._feats(x), self._feats(y))):
            total = total + getattr(self, f"lin{k}")((fx - fy) ** 2).mean(dim=(1, 2, 3))
        return total


def load_perceptual(path: str | Path | None) -> LPIPS | None:
    """LPIPS with weights from a local ``.safetensors`` file, or ``None`` if no path is given.

    A path that is given but missing or incomplete is an error (a typo should not silently turn
    the loss off)."""
    if not path:
        return None
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"LPIPS weights {p} not found")
    model = LPIPS()
    sd = load_file(str(p))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [m for m in missing if m not in ("shift", "scale")]
    if missing:
        raise ValueError(f"{p}: missing LPIPS tensors {missing[:4]}{'...' if len(missing) > 4 else ''}")
    if unexpected:
        raise ValueError(f"{p}: unexpected tensors {unexpected[:4]}")
    return model
