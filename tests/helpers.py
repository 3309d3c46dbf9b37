"""Helpers shared by test files: configs as brainfm-prep composes them, the installed entry
points run as a user runs them, and weight comparison."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from brainfm.configuration import compose_config, prep_configs

#: Where this Python's entry points (brainfm-prep, brainfm-bench, ...) are installed.
BIN = Path(sys.executable).parent


def load_configs(name: str, overrides=()):
    """(DatasetSpec, StandardiseConfig) of ``dataset=name`` as brainfm-prep composes them."""
    return prep_configs(compose_config([f"dataset={name}", *overrides]))


def run_tool(tool: str, *args, cwd=None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run an installed entry point with ``args`` (one thread per process, as the machine is
    shared), capturing its output as text."""
    return subprocess.run([str(BIN / tool), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def user_experiment(root: Path, name: str, body: str) -> Path:
    """A user's config folder (for ``--config-dir``) holding ``experiment/<name>.yaml``:
    ``body`` under the ``# @package _global_`` line an experiment file starts with."""
    folder = Path(root) / "configs"
    (folder / "experiment").mkdir(parents=True, exist_ok=True)
    (folder / "experiment" / f"{name}.yaml").write_text(f"# @package _global_\n{body}")
    return folder


def same_weights(a, b) -> bool:
    """Whether two modules hold exactly the same tensors under the same names."""
    import torch

    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def damage_archive(path) -> str:
    """Flip one bit inside the largest tensor of a torch archive (a .ckpt or .pt zip), as a
    failing disk or copy would: the archive stays readable, its CRC-32 no longer matches.
    Returns the member's name."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as archive:
        tensors = [m for m in archive.infolist() if "/data/" in m.filename]
        member = max(tensors, key=lambda m: m.file_size)  # one float of the largest tensor
    data = bytearray(Path(path).read_bytes())
    # the member's bytes start after its local header (30 bytes, its name, its own extra
    # field, which torch pads for alignment: not the central directory's)
    name_len, extra_len = struct.unpack("<HH", data[member.header_offset + 26:
                                                    member.header_offset + 30])
    data[member.header_offset + 30 + name_len + extra_len + 8] ^= 0x40
    Path(path).write_bytes(bytes(data))
    return member.filename
