"""Interruption and concurrency of `optimlab compare` (real subprocesses, real signals).

Each test starts the command in its own session, finds every process of that session through
/proc (main, forkserver, resource tracker, workers) and kills whatever is left in a finally.
Waits poll with generous deadlines (a loaded 2-core machine); nothing relies on a fixed sleep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from optimlab.experiments import ExperimentConfig, OptimizerSpec, run_experiment
from optimlab.experiments.lock import OutputLocked, output_lock

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

SRC = str(Path(__file__).resolve().parents[1] / "src")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


def compare_cmd(out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "optimlab.cli",
        "compare",
        "--quiet",
        "--out",
        str(out),
        "--model",
        "mlp",
        "--width",
        "0.5",
        "--epochs",
        "200",
        "--batch-size",
        "16",
        "--seeds",
        "8",
        "--workers",
        "2",
        "--optimizers",
        "sgdm-ema:lr=0.1",
        "adam:lr=0.001",
    ]


def session_pids(sid: int) -> list[int]:
    """Live (not zombie) processes whose session id is `sid`."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            rest = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(rest[3]) == sid and rest[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def wait_until(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None) -> float:
    start = time.monotonic()
    while not predicate():
        if proc is not None and proc.poll() is not None:
            assert proc.stderr is not None  # started with stderr=PIPE
            raise AssertionError(f"the command ended early while waiting for {what}: {proc.stderr.read().decode()}")
        assert time.monotonic() - start < timeout, f"no {what} within {timeout} s"
        time.sleep(0.05)
    return time.monotonic() - start


@pytest.fixture
def session():
    """Start commands in new sessions; kill every process of those sessions afterwards."""
    started: list[subprocess.Popen] = []

    def start(cmd: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        for pid in session_pids(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def checkpoints(out: Path) -> list[Path]:
    return list((out / "ckpt").glob("*/checkpoint.pt")) if (out / "ckpt").is_dir() else []


def finished(out: Path) -> int:
    runs = out / "runs"
    return len([p for p in runs.glob("*.json") if not p.name.endswith(".error.json")]) if runs.is_dir() else 0


def test_ctrl_c_stops_dispatch_and_every_process_quickly(tmp_path, session):
    out = tmp_path / "out"
    proc = session(compare_cmd(out))
    wait_until(lambda: len(checkpoints(out)) >= 2, 180, "two in-flight checkpoints", proc)
    # a second compare on the same folder is refused at once, naming the holder
    second = subprocess.run(compare_cmd(out), env=ENV, capture_output=True, text=True, timeout=180)
    assert second.returncode == 2
    assert len(second.stderr.strip().splitlines()) == 1 and f"pid {proc.pid}" in second.stderr
    at_signal = finished(out)
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    proc.wait(timeout=60)
    exit_s = time.monotonic() - t0
    print(f"Ctrl-C to exit: {exit_s:.2f} s")
    assert proc.returncode == 130, proc.stderr.read().decode()
    assert exit_s < 15
    # no process of the command survives (forkserver, resource tracker, workers)
    wait_until(lambda: not session_pids(proc.pid), 10, "exit of every process of the command")
    # dispatch stopped: at most the runs that were finishing at the signal completed
    assert finished(out) == at_signal  # no run completes after the signal (one may have finished before it)
    assert not list((out / "runs").glob("*.error.json"))
    assert checkpoints(out), "the in-flight runs' epoch checkpoints are kept for the resume"


def test_kill_9_of_the_main_process_leaves_no_worker(tmp_path, session):
    out = tmp_path / "out"
    proc = session(compare_cmd(out))
    wait_until(lambda: len(checkpoints(out)) >= 2, 180, "two in-flight checkpoints", proc)
    assert len(session_pids(proc.pid)) >= 3  # main, forkserver, workers (and the resource tracker)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    gone = wait_until(lambda: not session_pids(proc.pid), 10, "exit of the orphaned workers")
    print(f"orphans gone {gone:.2f} s after kill -9")


HOLD = """
import sys, time
from optimlab.experiments.lock import output_lock
with output_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


def test_the_output_folder_lock_names_the_holder_and_dies_with_it(tmp_path, session):
    out = tmp_path / "out"
    holder = session([sys.executable, "-c", HOLD, str(out)])
    assert holder.stdout.readline().decode().strip() == "held"
    config = ExperimentConfig(
        name="l",
        model="mlp",
        epochs=1,
        max_steps_per_epoch=1,
        seeds=(0,),
        optimizers=(OptimizerSpec("sgd", "sgd", {"lr": 0.1}),),
    )
    with pytest.raises(OutputLocked, match=rf"in use by another optimlab process \(pid {holder.pid}"):
        run_experiment(config, out, workers=1, progress=False)
    assert not (out / "runs").exists()
    holder.send_signal(signal.SIGKILL)  # the kernel releases the flock with the process
    holder.wait(timeout=30)
    results = run_experiment(config, out, workers=1, progress=False)
    assert [r.status for r in results] == ["done"]
    with output_lock(out), output_lock(out):  # re-entrant within one process
        pass
