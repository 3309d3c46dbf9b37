"""Dataset specifications: which files make a dataset, and how ids and labels follow from them.

A spec is plain data (it comes from ``conf/dataset/*.yaml``): a folder or archive under the
data root, globs for the recordings, one regular expression whose named groups (``subject``,
``session``, ``run``, ``label``) are read off each relative path, a label source and a
windowing rule. Nothing here is specific to one dataset; the YAML files are, and so are the
facts about a dataset that the rest of brainfm reads: its licence (the model card of weights
trained on it), its paradigm (the classical baselines it is compared with) and its citation.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ..errors import ConfigError
from .readers.segment_archives import iter_segments


@dataclass
class LabelSpec:
    source: str = "none"                    # none | events | path
    map: dict = field(default_factory=dict)  # event description or path label -> class name
    classes: list = field(default_factory=list)


@dataclass
class WindowSpec:
    kind: str = "fixed"                     # fixed | events
    length_s: float = 30.0                  # fixed windows
    stride_s: float | None = None
    tmin: float = 0.0                       # event windows
    tmax: float = 1.0
    reject_max_abs: float | None = None     # standardised units (1.0 = 100 uV by default)


#: The experimental paradigms a dataset can declare; each has its own classical baselines.
PARADIGMS = ("ssvep", "erp", "task", "rest", "epilepsy")
#: Facts about a dataset's source: they change no window of its store, so no store hash.
FACT_FIELDS = ("licence", "paradigm", "citation")


@dataclass
class DatasetSpec:
    name: str
    path: str
    include: list = field(default_factory=lambda: ["**/*"])
    exclude: list = field(default_factory=list)
    path_regex: str | None = None
    read: dict = field(default_factory=dict)
    labels: LabelSpec = field(default_factory=LabelSpec)
    windows: WindowSpec = field(default_factory=WindowSpec)
    standardise: dict = field(default_factory=dict)
    has_subjects: bool = True
    description: str = ""
    views: dict = field(default_factory=dict)  # other ways to cut the same recordings
    view: str | None = None                    # which view this spec is (None: the task's)
    licence: str | None = None                 # the source's terms, for model cards
    paradigm: str | None = None                # one of PARADIGMS, for the classical baselines
    citation: str = ""                         # what to cite when using the recordings

    @classmethod
    def from_dict(cls, cfg) -> "DatasetSpec":
        cfg = {k: v for k, v in dict(cfg).items() if not str(k).startswith("_")}
        known = set(cls.__dataclass_fields__)
        unknown = set(cfg) - known
        if unknown:
            raise ConfigError(f"dataset config has unknown key(s) {sorted(unknown)}; "
                              f"known: {sorted(known)}")
        for key in ("name", "path"):
            if not cfg.get(key) or str(cfg[key]) == "???":
                raise ConfigError(f"dataset.{key} is required (got {cfg.get(key)!r})")
        labels = LabelSpec(**dict(cfg.pop("labels", {}) or {}))
        windows = WindowSpec(**dict(cfg.pop("windows", {}) or {}))
        for key in ("include", "exclude"):
            if key in cfg and isinstance(cfg[key], str):
                cfg[key] = [cfg[key]]
            if key in cfg:
                cfg[key] = list(cfg[key])
        for key in ("read", "standardise", "views"):
            cfg[key] = _plain(cfg.get(key) or {})
        spec = cls(labels=labels, windows=windows, **cfg)
        spec.labels.map = {str(k): str(v) for k, v in _plain(spec.labels.map).items()}
        spec.labels.classes = [str(c) for c in spec.labels.classes]
        spec.validate()
        return spec

    def validate(self) -> None:
        if self.labels.source not in ("none", "events", "path"):
            raise ConfigError(f"dataset.labels.source={self.labels.source!r}; "
                              "use none, events or path")
        if self.windows.kind not in ("fixed", "events"):
            raise ConfigError(f"dataset.windows.kind={self.windows.kind!r}; use fixed or events")
        if self.windows.kind == "events" and self.labels.source != "events":
            raise ConfigError("event-locked windows need dataset.labels.source=events")
        if self.labels.source != "none":
            if not self.labels.classes:
                self.labels.classes = sorted(set(self.labels.map.values()))
            missing = sorted(set(self.labels.map.values()) - set(self.labels.classes))
            if missing:
                raise ConfigError(f"dataset.labels.map names classes {missing} missing from "
                                  f"dataset.labels.classes={self.labels.classes}")
        if self.paradigm is not None and self.paradigm not in PARADIGMS:
            raise ConfigError(f"dataset {self.name!r}: paradigm={self.paradigm!r}; use one of "
                              f"{list(PARADIGMS)}, or leave it out")
        if self.path_regex:
            try:
                re.compile(self.path_regex)
            except re.error as err:
                raise ConfigError(f"dataset.path_regex {self.path_regex!r}: {err}") from err


    def with_view(self, view: str) -> "DatasetSpec":
        """The same recordings cut another way, e.g. ``continuous`` for pretraining.

        A view replaces the window rule (and, unless it says otherwise, drops the labels): a
        task cuts event-locked trials, pretraining wants the continuous signal in long
        non-overlapping windows. Every dataset has the ``continuous`` view (fixed
        ``CONTINUOUS_LENGTH_S`` windows); ``views:`` in its config overrides or adds views.
        The dataset keeps its name, so leakage checks see the same recordings.
        """
        known = {CONTINUOUS_VIEW: {}, **self.views}
        if view not in known:
            raise ConfigError(f"dataset {self.name!r} has no view {view!r}; it has "
                              f"{sorted(known)} (declare one under 'views:' in its config)")
        override = _plain(known[view] or {})
        unknown = set(override) - {"windows", "labels"}
        if unknown:
            raise ConfigError(f"dataset {self.name!r} view {view!r}: unknown key(s) "
                              f"{sorted(unknown)}; a view sets 'windows' and 'labels'")
        windows = {"kind": "fixed", "length_s": CONTINUOUS_LENGTH_S, "stride_s": None,
                   "reject_max_abs": None} if view == CONTINUOUS_VIEW else asdict(self.windows)
        windows.update(override.get("windows") or {})
        labels = override.get("labels") or {"source": "none", "map": {}, "classes": []}
        out = replace(self, windows=WindowSpec(**windows), labels=LabelSpec(**labels),
                      views={}, view=view)
        out.validate()
        return out

    def recipe(self) -> dict:
        """The spec as plain data without its :data:`FACT_FIELDS`: what decides the contents
        of its store (declaring a licence does not make a prepared store stale)."""
        return {k: v for k, v in asdict(self).items() if k not in FACT_FIELDS}

    def store_name(self) -> str:
        """The store folder's name: the dataset's, plus ``.<view>`` for a view."""
        return self.name if self.view is None else f"{self.name}.{self.view}"


CONTINUOUS_VIEW = "continuous"
CONTINUOUS_LENGTH_S = 10.0


def _plain(obj):
    """OmegaConf containers -> plain dicts/lists (a no-op for plain data)."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(obj, (DictConfig, ListConfig)):
            return OmegaConf.to_container(obj, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf ships with hydra-core
        pass
    return obj


@dataclass
class RecordingItem:
    """One recording to prepare: where it is and what the path says about it."""

    key: str                                # stable id, safe as a file name
    path: Path
    member: str | None
    relpath: str
    subject: str | None
    session: str | None
    run: str | None
    path_label: str | None


def safe_key(relpath: str) -> str:
    """A file-name-safe, collision-free id for a relative path."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", relpath).strip("_")[-80:]
    digest = hashlib.sha1(relpath.encode()).hexdigest()[:8]
    return f"{stem}-{digest}"


def _ids_from_path(spec: DatasetSpec, relpath: str) -> dict:
    if not spec.path_regex:
        return {}
    match = re.search(spec.path_regex, relpath)
    if not match:
        return {}
    return {k: v for k, v in match.groupdict().items() if v is not None}


def list_recordings(spec: DatasetSpec, data_root: Path) -> list[RecordingItem]:
    """Every recording of the dataset, sorted by relative path.

    Raises :class:`ConfigError` when the dataset's folder or archive does not exist, naming
    the path and the data-root setting to change.
    """
    base = (data_root / spec.path).resolve()
    if not base.exists():
        raise ConfigError(f"dataset {spec.name!r}: {base} does not exist; set data_root "
                          f"(or $BRAINFM_DATA_ROOT) to the folder holding {spec.path!r}")
    items: list[RecordingItem] = []
    if base.is_file() and base.suffix.lower() == ".zip":
        for member, seg_class in iter_segments(base):
            rel = f"{base.name}/{member}"
            ids = _ids_from_path(spec, rel)
            items.append(RecordingItem(
                key=safe_key(rel), path=base, member=member, relpath=rel,
                subject=ids.get("subject"), session=ids.get("session"),
                run=ids.get("run", Path(member).stem), path_label=ids.get("label", seg_class)))
        return items
    seen = set()
    for pattern in spec.include:
        for p in sorted(base.glob(pattern)):
            if not p.is_file() or p in seen:
                continue
            rel = p.relative_to(base).as_posix()
            if any(Path(rel).match(x) for x in spec.exclude):
                continue
            seen.add(p)
            ids = _ids_from_path(spec, rel)
            items.append(RecordingItem(
                key=safe_key(rel), path=p, member=None, relpath=rel,
                subject=ids.get("subject"), session=ids.get("session"), run=ids.get("run"),
                path_label=ids.get("label")))
    return sorted(items, key=lambda it: it.relpath)
