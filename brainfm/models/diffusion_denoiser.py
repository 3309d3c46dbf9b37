"""The EEGDM-style diffusion denoiser: one channel at a time through gated S4D blocks.

Every channel of every window is an independent sequence (batch x channels folded), so any
montage goes through. What the network knows about a channel is a conditioning vector built
from its sensor features (position, orientation, type; see brainfm.data.sensors), added with
the diffusion-step embedding to every block. A channel without a position (a single-channel
segment, a bipolar derivation) has xyz = 0 and ``has_position = 0``: it gets the learned
"unknown position" code of its sensor type, never the code of a sensor at the origin.

Read top to bottom: timestep embedding -> channel code -> GatedS4DBlock -> DiffusionDenoiser.
``channel_conditioning="index"`` replaces the sensor code by a table of channel indices, the
reference's layout, so its weights load (brainfm.models.eegdm_import).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..data.sensors import N_SENSOR_FEATURES, SENSOR_TYPE_IDS
from .contract import ContractMixin
from .s4d import S4D
from .transforms import staged_mu_law


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """(M,) diffusion steps -> (M, dim): [sin(t w_k), cos(t w_k)], w_k = 1e4^(-k/(dim/2-1))."""
    if dim % 2 or dim < 4:
        raise ValueError(f"timestep embedding width {dim} must be even and >= 4")
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) / (half - 1)
                      * torch.arange(half, device=t.device, dtype=torch.float32))
    angles = t.float()[:, None] * freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def _mlp(d_in: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_out), nn.SiLU(), nn.Linear(d_out, d_out), nn.SiLU())


class SensorCode(nn.Module):
    """(…, 8) sensor features -> (…, d): linear in (xyz, orientation, has_position) plus an
    embedding of the sensor type."""

    def __init__(self, d: int):
        super().__init__()
        self.geometry = nn.Linear(7, d)
        self.type_embedding = nn.Embedding(max(SENSOR_TYPE_IDS.values()) + 1, d)

    def forward(self, sensors: torch.Tensor) -> torch.Tensor:
        geom = torch.cat([sensors[..., :6], sensors[..., 7:8]], dim=-1)
        return self.geometry(geom) + self.type_embedding(sensors[..., 6].long())


class GatedS4DBlock(nn.Module):
    """LayerNorm + conditioning -> Linear(d, 2d) -> S4D -> sigmoid(gate) * tanh(filter)
    -> skip output, and a residual output (block input added) for the next block."""

    def __init__(self, d_model: int, d_cond: int, d_state: int, is_last: bool = False):
        super().__init__()
        self.cond = nn.Linear(d_cond, d_model)
        nn.init.zeros_(self.cond.weight)
        nn.init.zeros_(self.cond.bias)
        self.norm = nn.LayerNorm(d_model)
        self.expand = nn.Linear(d_model, 2 * d_model)
        self.ssm = S4D(2 * d_model, d_state, bidirectional=True)
        self.residual = None if is_last else nn.Linear(d_model, d_model)
        self.skip = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, cond: torch.Tensor):
        """``x`` (M, L, d), ``cond`` (M, 1, d_cond) -> (next input or None, skip, gate)."""
        # the S4D layer applies norm, conditioning and ``expand`` itself and recomputes their
        # outputs in the backward pass rather than keeping them (B x L x 3d floats per
        # block; it keeps only x). Gating and the two projections are one Function on the
        # convolution's (M, 2d, L) output (GateProject).
        h = self.ssm.forward_channels_first(x, self.expand, norm=self.norm,
                                            shift=self.cond(cond))
        w_r, b_r = (None, None) if self.residual is None else (self.residual.weight,
                                                                self.residual.bias)
        nxt, skip, gate = GateProject.apply(h, x, w_r, b_r, self.skip.weight, self.skip.bias)
        return nxt, skip, gate.transpose(1, 2)


class GateProject(torch.autograd.Function):
    """inter = sigmoid(h[:, :d]) * tanh(h[:, d:]) for h (M, 2d, L), then
    nxt = inter^T W_r^T + b_r + x and skip = inter^T W_s^T + b_s, both (M, L, d); also
    returns the gate (M, d, L) (the latents read it; gradients through it are kept, so a
    loss on the latents can train the backbone).

    Keeps the gate and tanh halves (what their derivatives need) but not ``inter``, which the
    backward pass recomputes with one product: 16 MB less per block at batch 32 x 1000 x 128
    than plain autograd, which keeps inter for the projections' weight gradients. The
    projections read inter transposed as a GEMM operand (no contiguous copy). Without W_r
    (the last block) ``nxt`` is None. Under CUDA autocast it runs in float32, as the
    convolution before it does, so its hand-written backward sees one dtype.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, h, x, w_r, b_r, w_s, b_s):
        d = w_s.shape[1]
        gate, tanh = torch.sigmoid(h[:, :d]), torch.tanh(h[:, d:])
        inter_t = (gate * tanh).transpose(1, 2)                           # (M, L, d)
        ctx.save_for_backward(gate, tanh, w_r, w_s)
        ctx.set_materialize_grads(False)  # no zero-filled gradients for unused outputs
        skip = torch.baddbmm(b_s.expand(*inter_t.shape[:2], -1), inter_t,
                             w_s.t().expand(h.shape[0], -1, -1))
        nxt = None if w_r is None else torch.baddbmm(
            x, inter_t, w_r.t().expand(h.shape[0], -1, -1)).add_(b_r)
        return nxt, skip, gate

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, g_nxt, g_skip, g_gate):
        gate, tanh, w_r, w_s = ctx.saved_tensors
        inter_t = (gate * tanh).transpose(1, 2)                           # recomputed
        batch, d = gate.shape[:2]
        g_inter = d_ws = d_bs = d_wr = d_br = None
        if g_skip is not None:
            g_inter = torch.bmm(g_skip, w_s.expand(batch, -1, -1))        # (M, L, d)
            d_ws, d_bs = torch.bmm(g_skip.transpose(1, 2), inter_t).sum(0), g_skip.sum((0, 1))
        if g_nxt is not None and w_r is not None:
            w_b = w_r.expand(batch, -1, -1)
            g_inter = torch.bmm(g_nxt, w_b) if g_inter is None else g_inter.baddbmm_(g_nxt, w_b)
            d_wr, d_br = torch.bmm(g_nxt.transpose(1, 2), inter_t).sum(0), g_nxt.sum((0, 1))
        if g_inter is None and g_gate is None:
            return None, None, d_wr, d_br, d_ws, d_bs
        d_h = gate.new_empty(batch, 2 * d, gate.shape[2])
        top, bottom = d_h[:, :d], d_h[:, d:]
        if g_inter is not None:
            g_inter = g_inter.transpose(1, 2)                             # (M, d, L)
            torch.mul(g_inter, tanh, out=top)
            torch.mul(g_inter, gate, out=bottom).mul_(1 - tanh * tanh)    # tanh'
            if g_gate is not None:
                top.add_(g_gate)
        else:
            top.copy_(g_gate)
            bottom.zero_()
        top.mul_(gate).mul_(1 - gate)                                     # sigmoid'
        return d_h, (None if w_r is None else g_nxt), d_wr, d_br, d_ws, d_bs


class DiffusionDenoiser(ContractMixin, nn.Module):
    """Predicts the diffusion target (v, noise or signal) of noisy single-channel sequences.

    ``forward(x_t, t, sensors, channel_mask)`` takes windows (B, C, T) or patches
    (B, C, N, P) and returns the same shape (padded channels give zeros);
    ``denoise(seq, t, code)`` is the per-sequence core on (M, T).
    """

    def __init__(self, d_model: int = 128, d_state: int = 128, n_layers: int = 20,
                 d_cond: int = 512, d_time_embed: int = 128,
                 channel_conditioning: str = "sensor", n_channel_ids: int = 22,
                 sfreq: float = 200.0, patch_len: int = 200):
        super().__init__()
        if channel_conditioning not in ("sensor", "index"):
            raise ValueError(f"channel_conditioning={channel_conditioning!r}; "
                             "use 'sensor' (any montage) or 'index' (the reference's table)")
        self.config = dict(d_model=d_model, d_state=d_state, n_layers=n_layers, d_cond=d_cond,
                           d_time_embed=d_time_embed,
                           channel_conditioning=channel_conditioning,
                           n_channel_ids=n_channel_ids, sfreq=sfreq, patch_len=patch_len)
        self.patch_len, self.d_model, self.d_time_embed = patch_len, d_model, d_time_embed
        self.input = nn.Sequential(nn.Linear(1, d_model), nn.ReLU())
        self.blocks = nn.ModuleList(
            GatedS4DBlock(d_model, d_cond, d_state, is_last=i == n_layers - 1)
            for i in range(n_layers))
        self.out_hidden = nn.Linear(d_model, d_model)
        nn.init.kaiming_normal_(self.out_hidden.weight)
        self.out = nn.Linear(d_model, 1)  # zero: the untrained model predicts zeros
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.time_mlp = _mlp(d_time_embed, d_cond)
        self.channel_code = (SensorCode(d_time_embed) if channel_conditioning == "sensor"
                             else nn.Embedding(n_channel_ids, d_time_embed))
        self.channel_mlp = _mlp(d_time_embed, d_cond)

    # ---- the per-sequence core --------------------------------------------------------------
    def conditioning(self, t: torch.Tensor, channel: torch.Tensor) -> torch.Tensor:
        """(M, d_cond): timestep code + channel code. ``channel`` is (M, 8) sensor
        features, or (M,) channel indices with ``channel_conditioning="index"``."""
        return (self.time_mlp(timestep_embedding(t, self.d_time_embed))
                + self.channel_mlp(self.channel_code(channel)))

    def denoise(self, seq: torch.Tensor, t: torch.Tensor, channel: torch.Tensor,
                return_gates: bool = False):
        """``seq`` (M, T) noisy sequences, ``t`` (M,) steps -> (M, T) prediction (and the
        gate activations of every block, (M, T, d) each, with ``return_gates``)."""
        cond = self.conditioning(t, channel)[:, None, :]
        h = self.input(seq[..., None])
        skips, gates = 0, []
        for block in self.blocks:
            h, skip, gate = block(h, cond)
            skips = skips + skip
            if return_gates:
                gates.append(gate)
        y = self.out(torch.relu(self.out_hidden(skips)))[..., 0]
        return (y, gates) if return_gates else y

    @torch.no_grad()
    def latents(self, x: torch.Tensor, sensors: torch.Tensor | None = None,
                channel_mask: torch.Tensor | None = None, t: int = 1,
                channel_index: torch.Tensor | None = None) -> torch.Tensor:
        """EEGDM's representation: the gate activations of every block for the (clean,
        model-space) input at step ``t``, summarised per ``patch_len`` samples by their
        unbiased standard deviation over time.

        ``x`` (B, C, T) or (B, C, N, P) with T a multiple of ``patch_len`` -> (B, C, layers,
        patches, d_model), zeros on padded channels.
        """
        seq = x.reshape(x.shape[0], x.shape[1], -1)
        b, c, length = seq.shape
        if length % self.patch_len:
            raise ValueError(f"latents pool over {self.patch_len}-sample patches; the window "
                             f"has {length} samples -> crop it to a multiple")
        channel = self._channel_inputs(b, c, sensors, channel_index)
        valid = (torch.ones(b, c, dtype=torch.bool, device=x.device) if channel_mask is None
                 else channel_mask.bool())
        steps = torch.full((int(valid.sum()),), t, dtype=torch.long, device=x.device)
        _, gates = self.denoise(seq[valid].float(), steps, channel[valid], return_gates=True)
        n = length // self.patch_len
        pooled = torch.stack([g.reshape(g.shape[0], n, self.patch_len, -1).std(dim=2)
                              for g in gates], dim=1)                     # (M, layers, N, d)
        out = pooled.new_zeros(b, c, *pooled.shape[1:])
        out[valid] = pooled
        return out

    # ---- features: the representation probes and embeddings read ----------------------------
    def channel_encoding(self) -> str:
        return channel_encoding(self.config)

    def forward_layers(self, x: torch.Tensor, sensors: torch.Tensor | None = None,
                       channel_mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Per-token features of every block, bottom to top (each (B, C, N, d_model)): the
        :meth:`latents` of the signal in the store's units after the staged mu-law."""
        return list(self.latents(staged_mu_law(x), sensors, channel_mask).unbind(dim=2))

    def forward_features(self, x: torch.Tensor, sensors: torch.Tensor | None = None,
                         channel_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Per-token features (B, C, N, layers * d_model): every block's latents side by
        side, the linear probe's input."""
        lat = self.latents(staged_mu_law(x), sensors, channel_mask)        # (B,C,Ly,N,d)
        return lat.permute(0, 1, 3, 2, 4).flatten(3)

    # ---- windows of a batch ----------------------------------------------------------------
    def forward(self, x: torch.Tensor, t: torch.Tensor, sensors: torch.Tensor | None = None,
                channel_mask: torch.Tensor | None = None,
                channel_index: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (B, C, T) or (B, C, N, P) noisy windows, ``t`` (B,) or (B, C) steps; ``sensors``
        (B, C, 8) (or ``channel_index`` (B, C) in index mode). Padded channels
        (``channel_mask`` False) are skipped and returned as zeros."""
        shape = x.shape
        seq = x.reshape(shape[0], shape[1], -1)
        b, c, _ = seq.shape
        channel = self._channel_inputs(b, c, sensors, channel_index)
        valid = (torch.ones(b, c, dtype=torch.bool, device=x.device) if channel_mask is None
                 else channel_mask.bool())
        steps = t.reshape(b, -1).expand(b, c)
        out = torch.zeros_like(seq)
        out[valid] = self.denoise(seq[valid], steps[valid], channel[valid]).to(out.dtype)
        return out.reshape(shape)

    def _channel_inputs(self, b, c, sensors, channel_index) -> torch.Tensor:
        if self.config["channel_conditioning"] == "index":
            if channel_index is None:
                raise ValueError("this denoiser (channel_conditioning='index', the reference's "
                                 "layout) needs channel_index (B, C) of ints "
                                 f"< {self.config['n_channel_ids']}")
            return channel_index.long()
        if sensors is None or sensors.shape[-1] != N_SENSOR_FEATURES:
            got = None if sensors is None else tuple(sensors.shape)
            raise ValueError(f"the denoiser needs sensor features (B, C, {N_SENSOR_FEATURES}) "
                             f"(got {got}); pass sensors=batch['sensors']")
        return sensors.to(torch.float32)


def channel_encoding(config: dict) -> str:
    """How a denoiser of ``config`` tells channels apart: by sensor features, or by the
    reference's table of channel indices (one channel order)."""
    return "channel_index" if config.get("channel_conditioning") == "index" else "sensor"


__all__ = ["DiffusionDenoiser", "channel_encoding", "GateProject", "GatedS4DBlock", "SensorCode",
           "timestep_embedding"]
