"""Supervisor: real processes started together, stopped together, failures named."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from specforge_trainer.local.supervisor import ProcessFailed, ProcessSpec, Supervisor

pytestmark = pytest.mark.integration
PY = sys.executable


def sleeper(name: str, seconds: float = 60, **kwargs) -> ProcessSpec:
    return ProcessSpec(
        name, [PY, "-c", f"import time; print('{name} up', flush=True); time.sleep({seconds})"], **kwargs
    )


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for whoever inherited it to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_run_succeeds_when_every_worker_exits_0_and_services_are_stopped(tmp_path):
    sup = Supervisor(tmp_path)
    service = sup.start(sleeper("redis", service=True))
    for i in range(2):
        sup.start(ProcessSpec(f"rank{i}", [PY, "-c", f"print('rank{i} done')"]))
    sup.wait(timeout_s=30)
    assert service.poll() is not None
    assert (tmp_path / "rank1.log").read_text().strip() == "rank1 done"


def test_a_failed_worker_stops_everything_and_is_named(tmp_path):
    sup = Supervisor(tmp_path, stop_grace_s=2)
    others = [sup.start(sleeper("producer-0")), sup.start(sleeper("redis", service=True))]
    sup.start(
        ProcessSpec("rank1", [PY, "-c", "import sys; print('CUDA out of memory', flush=True); sys.exit(3)"])
    )
    with pytest.raises(ProcessFailed, match=r"rank1 exited with status 3[\s\S]*CUDA out of memory") as err:
        sup.wait(timeout_s=30)
    assert err.value.name == "rank1"
    assert all(p.poll() is not None for p in others)


def test_a_killed_process_and_its_children_are_reported_and_reaped(tmp_path):
    sup = Supervisor(tmp_path, stop_grace_s=2)
    # a launcher with a child of its own, like torchrun and its ranks
    launcher = sup.start(
        ProcessSpec("torchrun", [PY, "-c", (
            "import subprocess, sys, time;"
            "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
            "print(c.pid, flush=True); time.sleep(60)"
        )])
    )  # fmt: skip
    producer = sup.start(sleeper("producer-0"))
    deadline = time.monotonic() + 20
    while not (tmp_path / "torchrun.log").read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int((tmp_path / "torchrun.log").read_text().split()[0])
    threading.Timer(0.3, lambda: os.kill(producer.pid, signal.SIGKILL)).start()
    with pytest.raises(ProcessFailed, match="producer-0 was killed by SIGKILL"):
        sup.wait(timeout_s=30)
    launcher.wait(timeout=5)
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child), "the launcher's child outlived the stop"


@pytest.fixture
def ctrl_c_raises():
    """Ctrl-C raises KeyboardInterrupt, even where the test runner was started with SIGINT ignored (a
    shell's background job), which Python then leaves ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_stops_everything(tmp_path, ctrl_c_raises):
    sup = Supervisor(tmp_path, stop_grace_s=2)
    procs = [sup.start(sleeper(f"rank{i}")) for i in range(2)]
    threading.Timer(0.3, lambda: signal.raise_signal(signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt):
        sup.wait(timeout_s=30)
    assert all(p.poll() is not None for p in procs)


def test_children_do_not_outlive_a_supervisor_killed_with_sigkill(tmp_path):
    """`kill -9 specforge run` must not leave ranks writing into --out while the user reruns."""
    pids_file = tmp_path / "pids"
    supervisor_code = (
        "import sys, time\n"
        "from specforge_trainer.local.supervisor import ProcessSpec, Supervisor\n"
        "from specforge_trainer.local.redis_server import LocalRedisServer\n"
        f"sup = Supervisor({str(tmp_path / 'logs')!r})\n"
        "redis = LocalRedisServer(" + repr(str(tmp_path / "redis")) + ").start()\n"
        "procs = [sup.start(ProcessSpec(f'rank{i}', [sys.executable, '-c', 'import time; time.sleep(120)']))"
        " for i in range(2)]\n"
        f"open({str(pids_file)!r}, 'w').write(' '.join(str(p.pid) for p in procs) + f' {{redis.process.pid}}')\n"
        "time.sleep(120)\n"
    )
    supervisor = subprocess.Popen([PY, "-c", supervisor_code])
    try:
        deadline = time.monotonic() + 60
        while not (pids_file.exists() and pids_file.read_text().strip()):
            assert time.monotonic() < deadline, "the supervisor never started its children"
            assert supervisor.poll() is None, "the supervisor exited early"
            time.sleep(0.05)
        children = [int(pid) for pid in pids_file.read_text().split()]
        assert len(children) == 3 and all(alive(pid) for pid in children)
        supervisor.kill()
        supervisor.wait()
        deadline = time.monotonic() + 20
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in children if alive(pid)], "children outlived their supervisor"
    finally:
        supervisor.kill()
