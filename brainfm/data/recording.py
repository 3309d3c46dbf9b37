"""The one in-memory form every reader produces and every later stage consumes."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: SI unit of each channel type as readers deliver it (the same convention as MNE).
SI_UNITS = {"eeg": "V", "seeg": "V", "ecog": "V", "dbs": "V", "eog": "V", "ecg": "V",
            "emg": "V", "mag": "T", "grad": "T/m"}


@dataclass
class Annotations:
    """Timed labels in seconds from the start of the recording (events are zero-length)."""

    onset: np.ndarray = field(default_factory=lambda: np.zeros(0))
    duration: np.ndarray = field(default_factory=lambda: np.zeros(0))
    description: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))

    def __post_init__(self):
        self.onset = np.asarray(self.onset, dtype=float)
        self.duration = np.asarray(self.duration, dtype=float)
        self.description = np.asarray([str(d) for d in self.description], dtype=object)
        if not (len(self.onset) == len(self.duration) == len(self.description)):
            raise ValueError("Annotations need onset, duration and description of equal length")

    def __len__(self) -> int:
        return len(self.onset)

    def counts(self) -> dict[str, int]:
        names, n = np.unique(self.description.astype(str), return_counts=True)
        return dict(zip(names.tolist(), n.tolist()))


@dataclass
class Recording:
    """A continuous multichannel recording with everything later stages need to know.

    ``data`` is float32 (n_channels, n_times). Until :func:`brainfm.standardise` runs it is in
    SI units (V, T, T/m); afterwards ``units`` says what one unit is (e.g. ``100 uV``).
    ``positions`` are head-frame metres with NaN rows where no position is known (never zeros);
    ``orientations`` are unit vectors for MEG coils and zeros for everything else.
    """

    data: np.ndarray
    sfreq: float
    ch_names: list[str]
    ch_types: list[str]
    positions: np.ndarray | None = None
    orientations: np.ndarray | None = None
    position_source: list[str] | None = None
    units: list[str] | None = None
    annotations: Annotations = field(default_factory=Annotations)
    bads: list[str] = field(default_factory=list)
    subject: str | None = None
    session: str | None = None
    run: str | None = None
    source: str = "<array>"
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.ch_names)
        if self.data.ndim != 2 or self.data.shape[0] != n:
            raise ValueError(f"{self.source}: data shape {self.data.shape} does not match "
                             f"{n} channel names")
        if len(self.ch_types) != n:
            raise ValueError(f"{self.source}: {len(self.ch_types)} channel types for {n} channels")
        if self.positions is None:
            self.positions = np.full((n, 3), np.nan, dtype=np.float32)
        if self.orientations is None:
            self.orientations = np.zeros((n, 3), dtype=np.float32)
        if self.position_source is None:
            self.position_source = ["missing"] * n
        if self.units is None:
            self.units = [SI_UNITS.get(t, "V") for t in self.ch_types]
        self.provenance.setdefault("source", self.source)
        self.provenance.setdefault("steps", [])

    # ---- shape -----------------------------------------------------------------------------
    @property
    def n_channels(self) -> int:
        return self.data.shape[0]

    @property
    def n_times(self) -> int:
        return self.data.shape[1]

    @property
    def duration(self) -> float:
        return self.n_times / self.sfreq

    # ---- derived copies --------------------------------------------------------------------
    def replace(self, **changes) -> "Recording":
        """A shallow copy with some fields changed (the provenance dict is copied)."""
        prov = dict(self.provenance)
        prov["steps"] = list(self.provenance.get("steps", []))
        changes.setdefault("provenance", prov)
        return dataclasses.replace(self, **changes)

    def pick(self, idx) -> "Recording":
        """Keep the channels at the given indices, in that order."""
        idx = np.asarray(idx, dtype=int)
        names = [self.ch_names[i] for i in idx]
        return self.replace(
            data=self.data[idx], ch_names=names, ch_types=[self.ch_types[i] for i in idx],
            positions=self.positions[idx], orientations=self.orientations[idx],
            position_source=[self.position_source[i] for i in idx],
            units=[self.units[i] for i in idx], bads=[b for b in self.bads if b in names])

    def with_step(self, name: str, **params) -> "Recording":
        """Record a processing step in the provenance (returns self for chaining)."""
        self.provenance.setdefault("steps", []).append({"step": name, **params})
        return self

    # ---- views -----------------------------------------------------------------------------
    @property
    def missing_positions(self) -> list[str]:
        return [n for n, s in zip(self.ch_names, self.position_source) if s == "missing"]

    def type_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.ch_types:
            out[t] = out.get(t, 0) + 1
        return out

    def __repr__(self) -> str:
        ids = ", ".join(f"{k}={v}" for k, v in
                        (("subject", self.subject), ("session", self.session), ("run", self.run))
                        if v is not None)
        return (f"<Recording {self.source!r} | {self.n_channels} ch {self.type_counts()} | "
                f"{self.sfreq:g} Hz | {self.duration:.1f} s | {len(self.annotations)} annotations"
                + (f" | {ids}" if ids else "") + ">")

    def to_mne(self):
        """An ``mne.io.RawArray`` of this recording (SI units), for plotting or MNE tools."""
        import mne

        info = mne.create_info(self.ch_names, self.sfreq, self.ch_types)
        for ch, pos in zip(info["chs"], self.positions):
            ch["loc"][:3] = pos  # NaN stays NaN: MNE's own marker for "no position"
        raw = mne.io.RawArray(self.data.astype(np.float64), info, verbose="error")
        if len(self.annotations):
            raw.set_annotations(mne.Annotations(self.annotations.onset,
                                                self.annotations.duration,
                                                self.annotations.description.astype(str)))
        raw.info["bads"] = list(self.bads)
        return raw
