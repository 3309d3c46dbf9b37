"""``prepare`` and ``embed`` for a loaded checkpoint: the model-side use of its data contract.

A loaded checkpoint carries its data contract (``model.contract``, config.json's
``contract``). :meth:`ContractMixin.prepare` applies it to a new recording
(:func:`brainfm.data.contract.prepare_recording`: the one standardiser brainfm has, and for
fixed-montage checkpoints the channel set selected, ordered and interpolated);
:meth:`ContractMixin.embed` windows a prepared recording and pools the backbone's features
(each family's public ``forward_features`` / ``forward_layers``) into one vector per window
and per recording.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..data.contract import (build_contract, prepare_recording, recording_sensors,
                             windows_of)
from ..data.recording import Recording
from ..progress import progress_bar
from .heads import masked_mean

#: Window length when a checkpoint does not record its training windows.
DEFAULT_WINDOW_S = 5.0


@dataclass
class Embeddings:
    """Per-window embeddings (n_windows, D), their mean per recording (D,), and where each
    window lies (seconds from the recording start)."""

    windows: np.ndarray
    recording: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    channels: list[str] = field(default_factory=list)
    sfreq: float | None = None
    source: str = "<windows>"

    def __len__(self) -> int:
        return len(self.windows)


# ---- the mixin ----------------------------------------------------------------------------
class ContractMixin:
    """``prepare`` and ``embed`` for a model loaded with :func:`brainfm.from_pretrained`
    (whose ``contract`` attribute holds config.json's data contract).

    A model class using it defines ``config`` (its constructor arguments), ``patch_len``,
    ``channel_encoding()`` (how it tells channels apart, one of
    :data:`brainfm.data.contract.ENCODINGS`), and per-token features:
    ``forward_features(x, sensors, channel_mask)`` -> (B, C, N, D) and ``forward_layers``
    (the same, per layer, bottom to top).
    """

    contract: dict
    allow_interpolation: bool = False

    def channel_encoding(self) -> str:
        raise NotImplementedError(f"{type(self).__name__} does not say how it tells channels "
                                  "apart -> define channel_encoding()")

    def data_contract(self) -> dict:
        """config.json's data contract (built from the architecture for models made in
        Python, which have none stored)."""
        contract = getattr(self, "contract", None)
        if contract is None:
            contract = build_contract(self.channel_encoding(), dict(self.config), {})
        return contract

    def prepare(self, recording, allow_interpolation: bool | None = None, **overrides):
        """The recording (Recording, MNE Raw or path) as this checkpoint was trained to see
        data: rate, filters, units, reference; for fixed-montage checkpoints its channel set
        in order (missing channels: an error listing them, or interpolated when
        ``allow_interpolation``). ``overrides`` change single standardisation keys."""
        allow = self.allow_interpolation if allow_interpolation is None else allow_interpolation
        return prepare_recording(recording, self.data_contract(), allow, **overrides)

    def window_length(self, window_s: float | None = None) -> int:
        """Samples per window: the training window (whole patches), or ``window_s``."""
        contract = self.data_contract()
        sfreq = float(contract.get("sfreq") or self.config.get("sfreq") or 200.0)
        seconds = window_s or contract.get("window_s") or DEFAULT_WINDOW_S
        patch = int(self.patch_len)
        return max(patch, int(round(seconds * sfreq)) // patch * patch)

    @torch.no_grad()
    def pooled_features(self, x: torch.Tensor, sensors: torch.Tensor | None = None,
                        channel_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, D): the backbone's features (what the linear probe reads) averaged over real
        channels and patches; from the layer the checkpoint records as its read-out
        (:func:`recorded_readout_layer`), the last one when it records none."""
        layer = recorded_readout_layer(self)
        if layer is None:
            feats = self.forward_features(x, sensors, channel_mask)
        else:
            feats = self.forward_layers(x, sensors, channel_mask)[layer]
        return masked_mean(feats.float(), None if channel_mask is None
                           else channel_mask.to(feats.device))

    def embed(self, recording_or_windows, batch_size: int = 32, sensors=None,
              channel_mask=None, window_s: float | None = None,
              allow_interpolation: bool | None = None, progress: bool = False) -> Embeddings:
        """Embeddings of a recording (Recording, MNE Raw, path; prepared first) cut into
        non-overlapping windows, or of windows already in model units ((B, C, T) or (B, C,
        N, P) array, with ``sensors`` (C, 8) or (B, C, 8) for sensor-encoded models)."""
        if isinstance(recording_or_windows, (np.ndarray, torch.Tensor)):
            x = torch.as_tensor(np.asarray(recording_or_windows, dtype=np.float32)
                                if isinstance(recording_or_windows, np.ndarray)
                                else recording_or_windows.float())
            if x.dim() == 2:
                x = x[None]
            if x.dim() == 4:
                x = x.flatten(2)
            if sensors is not None:
                sensors = torch.as_tensor(np.asarray(sensors, dtype=np.float32))
                if sensors.dim() == 2:
                    sensors = sensors[None].expand(x.shape[0], -1, -1)
            n = x.shape[-1]
            sfreq = float(self.data_contract().get("sfreq") or 200.0)
            vecs = self.embed_windows(x, sensors, channel_mask, batch_size, progress)
            starts = np.arange(len(x)) * n / sfreq
            return Embeddings(vecs, vecs.mean(axis=0), starts, starts + n / sfreq, sfreq=sfreq)
        rec = self.prepare(recording_or_windows, allow_interpolation)
        assert isinstance(rec, Recording)
        x, starts, size = windows_of(rec, self.window_length(window_s), int(self.patch_len))
        vecs = self.embed_windows(torch.from_numpy(x), recording_sensors(rec), None,
                                  batch_size, progress)
        return Embeddings(vecs, vecs.mean(axis=0), starts, starts + size / rec.sfreq,
                          channels=list(rec.ch_names), sfreq=rec.sfreq, source=rec.source)

    def embed_windows(self, x: torch.Tensor, sensors=None, channel_mask=None,
                      batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """(n, D) pooled features of windows ``x`` (n, C, T) already in model units, in
        batches on the model's device; ``sensors`` (n, C, 8), or (C, 8) shared by all."""
        if sensors is not None:
            sensors = torch.as_tensor(sensors)
            if sensors.dim() == 2:
                sensors = sensors[None].expand(len(x), -1, -1)
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        out = []
        bar = progress_bar(len(x), "brainfm embed", enabled=progress, unit="window")
        try:
            for s in range(0, len(x), batch_size):
                xb = x[s:s + batch_size].to(device)
                sb = None if sensors is None else sensors[s:s + batch_size].to(device)
                mb = None if channel_mask is None else channel_mask[s:s + batch_size].to(device)
                out.append(self.pooled_features(xb, sb, mb).cpu().numpy())
                bar.update(len(xb))
        finally:
            bar.close()
            self.train(was_training)
        width = out[0].shape[1] if out else 0
        return np.concatenate(out) if out else np.zeros((0, width), np.float32)


def readout_layer_of(extra: dict | None) -> int | None:
    """The layer a checkpoint's pretraining recorded as its read-out (``training.readout.
    layer`` of its metadata, ``extra``: chosen on validation subjects), or None for the last
    layer."""
    readout = ((extra or {}).get("training") or {}).get("readout") or {}
    layer = readout.get("layer")
    return None if layer is None else int(layer)


def recorded_readout_layer(model) -> int | None:
    """:func:`readout_layer_of` a loaded model's metadata (``model.extra``)."""
    return readout_layer_of(getattr(model, "extra", None))


__all__ = ["ContractMixin", "Embeddings", "prepare_recording", "readout_layer_of",
           "recorded_readout_layer"]
