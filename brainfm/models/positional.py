"""Where a token sits: by neighbourhood in the channel x patch grid, or by its sensor.

``acpe`` is CBraMod's asymmetric conditional positional encoding: a depthwise convolution over
the (channel, patch) grid of the tokens themselves. It ties the model to a channel order.
``sensor`` encodes each channel from its sensor features (position, orientation, type) and
adds a depthwise convolution along patches only, so the model is equivariant to channel order
and takes any montage, MEG and iEEG included.
"""
from __future__ import annotations

import torch
from torch import nn

from ..data.sensors import N_SENSOR_FEATURES, SENSOR_TYPE_IDS


class ACPE(nn.Module):
    """Depthwise Conv2d over (channels, patches), added to the tokens."""

    def __init__(self, d_model: int = 200, kernel: tuple[int, int] = (19, 7)):
        super().__init__()
        kc, kn = kernel
        self.conv = nn.Conv2d(d_model, d_model, (kc, kn), padding=(kc // 2, kn // 2),
                              groups=d_model)

    def forward(self, tokens: torch.Tensor, sensors=None, valid=None) -> torch.Tensor:
        if valid is not None:  # padded channels read as the convolution's own zero padding
            tokens = tokens * valid[:, :, None, None].to(tokens.dtype)
        return tokens + self.conv(tokens.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class SensorEncoding(nn.Module):
    """MLP over (xyz, orientation, has-position) + a sensor-type embedding, per channel;
    plus a depthwise convolution along patches for order in time."""

    def __init__(self, d_model: int = 200, hidden: int = 128, time_kernel: int = 7):
        super().__init__()
        n_geom = 7  # xyz, orientation xyz, has_position
        self.geometry = nn.Sequential(nn.Linear(n_geom, hidden), nn.GELU(),
                                      nn.Linear(hidden, d_model))
        self.type_embedding = nn.Embedding(max(SENSOR_TYPE_IDS.values()) + 1, d_model)
        self.time_conv = nn.Conv2d(d_model, d_model, (1, time_kernel),
                                   padding=(0, time_kernel // 2), groups=d_model)

    def forward(self, tokens: torch.Tensor, sensors: torch.Tensor | None = None,
                valid=None) -> torch.Tensor:
        if sensors is None:
            raise ValueError("the sensor encoding needs per-channel sensor features "
                             f"(B, C, {N_SENSOR_FEATURES}); pass sensors=batch['sensors']")
        geom = torch.cat([sensors[..., :6], sensors[..., 7:8]], dim=-1).to(tokens.dtype)
        code = self.geometry(geom) + self.type_embedding(sensors[..., 6].long())
        tokens = tokens + code[:, :, None, :]
        return tokens + self.time_conv(tokens.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


def build_positional(kind: str, d_model: int, acpe_kernel=(19, 7)) -> nn.Module:
    if kind == "acpe":
        return ACPE(d_model, tuple(acpe_kernel))
    if kind == "sensor":
        return SensorEncoding(d_model)
    raise ValueError(f"positional={kind!r}; use 'acpe' or 'sensor'")
