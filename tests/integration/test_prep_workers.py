"""brainfm-prep's worker processes die with their parent: kill -9 the parent mid-run and
no worker is left holding memory."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.real_data, pytest.mark.slow]


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_workers_die_when_the_parent_is_killed(tmp_path):
    cli = [str(Path(sys.executable).with_name("brainfm-prep")), "dataset=eegmat_sample",
           f"store_root={tmp_path}", "progress=false", "n_jobs=2"]
    parent = subprocess.Popen(cli, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline, workers = time.time() + 120, []
    while time.time() < deadline and parent.poll() is None and len(workers) < 2:
        workers = _children(parent.pid)
        time.sleep(0.02)
    assert len(workers) == 2, "the pool's workers never started"
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=30)
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    left = [w for w in workers if _alive(w)]
    for w in left:  # clean up after a failure: only the processes this test started
        os.kill(w, signal.SIGKILL)
    assert not left, f"workers {left} outlived their parent"
