"""Sweeps on a real two-node Ray cluster on this machine (`ray start --head` + `ray start --address`).

One test holds the cluster (start-up costs ~10 s on 2 busy cores, and pytest-xdist would start one
per worker for a shared fixture). The head has 1 CPU, the second node 2, and every CPU slot first
trains one throwaway epoch (warm workers), so both nodes take runs. Checked: the CLI's driver killed
with SIGKILL mid-sweep and restarted finishes the sweep (the runs it had started resume); runs land on both nodes; the second node
dies (SIGKILL of its raylet and of its workers) while it trains a run past a checkpoint, nothing
finished is lost and the moved run resumes from that checkpoint on the head; a deterministically
failing run is recorded once, not retried; every result equals the local pool's bit for bit. The
cluster is torn down in every case and no process of it may survive.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from optimlab.experiments import load_experiment_config, run_experiment
from optimlab.experiments.executor import make_executor
from optimlab.experiments.ray_executor import placement_path, read_placements
from optimlab.experiments.results import result_path
from ray_cluster import RayCluster, node_env

ray = pytest.importorskip("ray", reason="the Ray tests need ray (pip install 'optimlab[ray]')")
pytestmark = pytest.mark.ray

TOML = """
name = "ray"
dataset = "digits"
model = "cnn"
width = 0.5
epochs = 3
batch_size = 32
max_steps_per_epoch = 15
seeds = [0, 1, 2]
[[optimizers]]
name = "sgdm-ema"
hparams = {lr = 0.1}
[[optimizers]]
name = "adam"
hparams = {lr = 0.001}
"""
TIMING = {"epoch_time_s", "step_time_s", "wall_time_s"}  # measured, so never bit-equal


def comparable(r: Any) -> dict[str, Any]:
    """A result without its timings: what two sweeps of the same runs must share bit for bit."""
    d = r.to_dict()
    d.pop("wall_time_s")
    d["history"] = {k: v for k, v in d["history"].items() if k not in TIMING}
    return d


def wait_for_kill(cluster: RayCluster, out: Path, node2: str, state: dict[str, Any], stop: threading.Event) -> None:
    """Kill node 2 once it has finished a run and is training another past a checkpoint (and has
    logged that epoch's TensorBoard events, written right after the checkpoint)."""
    while not stop.is_set():
        finished, training = False, None
        for path in sorted((out / "ray").glob("*.jsonl")) if (out / "ray").is_dir() else []:
            rid = path.stem
            events = read_placements(out, rid)
            last = events[-1] if events else {}
            if last.get("node_id") != node2:
                continue
            if last.get("event") == "end":
                finished = True
            elif (
                (out / "ckpt" / rid / "checkpoint.pt").is_file()
                and any((out / "runs" / rid).glob(f"events.out.tfevents.*.{last['pid']}.*"))  # after the checkpoint
                and not result_path(out, rid).is_file()
            ):
                training = (rid, last["pid"])
        if finished and training:
            cluster.kill_node(1)
            state["killed_run"], state["killed_pid"] = training
            return
        time.sleep(0.05)


def warm_up(config: Any, slots: list[str], folder: Path) -> None:
    """One throwaway epoch of the sweep's recipe in a worker per CPU slot (node ids, repeated per
    CPU): this driver's job reuses those workers, so no node sits in its cold start (imports, data,
    torch's first optimizer) while the other takes every run."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from optimlab.experiments.sweep import _run_task

    @ray.remote(num_cpus=1)
    def one_epoch(i: int) -> str:
        spec = config.runs()[0]
        cfg = {**spec.config.to_dict(), "epochs": 1}
        assert _run_task(f"warm{i}", spec.label, cfg, spec.seed, str(folder), 1, True)["status"] == "done"
        return ray.get_runtime_context().get_node_id()

    pin = [NodeAffinitySchedulingStrategy(n, soft=False) for n in slots]
    assert ray.get([one_epoch.options(scheduling_strategy=p).remote(i) for i, p in enumerate(pin)]) == slots


def run_cli(args: list[str], **kw: Any) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "optimlab.cli", *args],
        env=node_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **kw,
    )


def test_sweep_across_two_nodes_survives_a_dead_node_and_a_dead_driver(tmp_path):
    toml = tmp_path / "ray.toml"
    toml.write_text(TOML)
    config = load_experiment_config(toml)
    ids = [s.run_id for s in config.runs()]
    with RayCluster(cpus=(1, 2)) as cluster:
        ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
        try:
            nodes = [n for n in ray.nodes() if n["Alive"]]
            assert len(nodes) == 2
            head = next(n["NodeID"] for n in nodes if "node:__internal_head__" in n["Resources"])
            node2 = next(n["NodeID"] for n in nodes if n["NodeID"] != head)
            warm_up(config, [head, node2, node2], tmp_path / "warm")

            # 1. the CLI's driver killed with SIGKILL once a run has a checkpoint; restarted, the sweep finishes
            cli_out = tmp_path / "cli"
            args = ["compare", "--config", str(toml), "--out", str(cli_out), "-q", "--executor", "ray"]
            args += ["--ray-address", cluster.address, "--seeds", "1"]
            driver = run_cli(args, start_new_session=True)
            try:
                deadline = time.monotonic() + 60
                while not list(cli_out.glob("runs/*/events.out.tfevents.*")) and time.monotonic() < deadline:
                    assert driver.poll() is None, driver.communicate()[0].decode()[-2000:]
                    time.sleep(0.05)  # events are written right after an epoch's checkpoint
            finally:
                os.killpg(driver.pid, signal.SIGKILL)
                driver.wait()
            assert len(list((cli_out / "runs").glob("*.json"))) < 2  # killed mid-sweep
            started = {p.parent.name: p.name for p in cli_out.glob("runs/*/events.out.tfevents.*")}
            assert started
            # restarted (here through the API, whose workers are warm: a second CLI process and its
            # job's cold workers would add ~20 s); the same run_experiment the CLI calls
            executor = make_executor("ray", ray_address=cluster.address)
            cli_results = run_experiment(config.replace(seeds=(0,)), cli_out, executor=executor, progress=False)
            assert len(cli_results) == 2 and all(r.done for r in cli_results)
            for rid, name in started.items():  # kept: resumed from its checkpoint, not redone from epoch 1
                assert (cli_out / "runs" / rid / name).is_file()

            # 2. six runs over both nodes; node 2 dies mid-run
            out = tmp_path / "ray"
            state: dict[str, Any] = {}
            stop = threading.Event()
            killer = threading.Thread(target=wait_for_kill, args=(cluster, out, node2, state, stop), daemon=True)
            killer.start()
            try:
                results = run_experiment(config, out, executor=executor, progress=False)
            finally:
                stop.set()
                killer.join(timeout=5)
            assert "killed_run" in state, "node 2 never trained a run past a checkpoint after finishing one"
            assert [r.status for r in results] == ["done"] * 6, [r.error for r in results]
            finished_on = {rid: read_placements(out, rid)[-1]["node_id"] for rid in ids}
            assert set(finished_on.values()) == {head, node2}  # runs landed on both nodes
            moved = read_placements(out, state["killed_run"])
            assert [(e["event"], e["node_id"]) for e in moved] == [("start", node2), ("start", head), ("end", head)]
            # the moved run resumed from node 2's checkpoint: node 2's event file (epochs before the
            # kill) is still there, which a restart from epoch 1 would have deleted
            events = [p.name for p in (out / "runs" / state["killed_run"]).iterdir()]
            writers = {name.split(".")[-2] for name in events}  # events.out.tfevents.<time>.<host>.<pid>.<n>
            assert str(state["killed_pid"]) in writers and len(writers) == 2, events
            assert not (out / "ckpt").exists()

            # 3. a run that fails deterministically is recorded once and not retried
            bad = config.replace(name="bad", optimizers=config.optimizers[:1], seeds=(0,))
            bad_opt = bad.optimizers[0]
            bad = bad.replace(optimizers=(type(bad_opt)(bad_opt.name, bad_opt.label, {"lr": -1.0}),))
            (failed,) = run_experiment(bad, tmp_path / "bad", executor=executor, progress=False, check=False)
            assert failed.status == "error" and "lr" in failed.error
            starts = [e for e in read_placements(tmp_path / "bad", failed.run_id) if e["event"] == "start"]
            assert len(starts) == 1
        finally:
            ray.shutdown()

    # 4. the same runs in the local pool: equal bit for bit (timings aside)
    local = run_experiment(config, tmp_path / "local", workers=2, progress=False)
    assert [comparable(r) for r in results] == [comparable(r) for r in local]
    by_id = {r.run_id: comparable(r) for r in local}
    assert [comparable(r) for r in cli_results] == [by_id[r.run_id] for r in cli_results]
    assert json.loads(placement_path(out, ids[0]).read_text().splitlines()[0])["ip"]
