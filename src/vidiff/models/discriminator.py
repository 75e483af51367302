"""A 3D patch discriminator for video autoencoders (LVDM's adversarial loss)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["PatchDiscriminator3D"]


class PatchDiscriminator3D(nn.Module):
    """PatchGAN over space-time: strided 4x4x4 convolutions (stride 2 in space, 1 or 2 in time),
    GroupNorm and LeakyReLU, ending in one logit per space-time patch.

    ``x``: ``(B, C, F, H, W)`` in ``[-1, 1]`` -> logits ``(B, 1, F', H', W')``.
    """

    def __init__(self, in_channels: int = 3, channels: int = 32, layers: int = 2):
        super().__init__()
        mods: list[nn.Module] = [nn.Conv3d(in_channels, channels, (3, 4, 4), (1, 2, 2), (1, 1, 1)),
                                 nn.LeakyReLU(0.2)]
        ch = channels
        for i in range(layers):
            out = min(ch * 2, channels * 8)
            mods += [nn.Conv3d(ch, out, (3, 4, 4), (2 if i == 0 else 1, 2, 2), (1, 1, 1)),
                     nn.GroupNorm(min(32, out // 4) or 1, out), nn.LeakyReLU(0.2)]
            ch = out
        mods.append(nn.Conv3d(ch, 1, 3, 1, 1))
        self.net = nn.Sequential(*mods)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[2] < 2:  # a single frame: repeat so the temporal stride has room
            x = F.pad(x, (0, 0, 0, 0, 0, 1), mode="replicate")
        return self.net(x)
