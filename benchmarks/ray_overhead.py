"""What running a sweep as Ray tasks costs on one machine, against the local process pool.

The same fixed sweep (digits, `cnn`, 2 optimizers x --seeds seeds, --epochs epochs) runs with
`--workers` local pool processes and as Ray tasks on a private Ray instance with as many CPUs,
alternating (local, ray, local, ray, ...) in fresh folders so that machine load hits both alike.
Each wall time is what a user waits for: run_experiment from call to return, start-up included
(the pool's forkserver; Ray's instance, its workers, and its shutdown).

    overhead ratio = median Ray wall / median local wall                   goal <= 1.10
    scheduling latency (per run) = from a Ray worker finishing a run to it starting the next one
                                   (driver's ray.wait -> next task's first line), from out/ray/*.jsonl
    cold start = from submission to the first run's first line on each worker (process + imports)
    no-op round trip = ray.get(f.remote()) of an empty task, mean of 50, on a warm worker
    instance start + stop = ray.init(address="local") + ray.shutdown(), what --executor ray without
                            --ray-address pays once per sweep on top of the runs

    python benchmarks/ray_overhead.py [--seeds 4] [--epochs 2] [--workers 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from optimlab.experiments import ExperimentConfig, OptimizerSpec, run_experiment
from optimlab.experiments.executor import make_executor
from optimlab.experiments.ray_executor import read_placements


def sweep_config(seeds: int, epochs: int) -> ExperimentConfig:
    return ExperimentConfig(
        name="ray-overhead",
        dataset="digits",
        model="cnn",
        epochs=epochs,
        batch_size=32,
        seeds=tuple(range(seeds)),
        optimizers=(OptimizerSpec("sgdm-ema", "sgdm-ema", {"lr": 0.1}), OptimizerSpec("adam", "adam", {"lr": 1e-3})),
    )


def timed_sweep(config: ExperimentConfig, out: Path, kind: str, workers: int) -> float:
    start = time.perf_counter()
    results = run_experiment(config, out, executor=make_executor(kind, workers=workers), progress=False)
    wall = time.perf_counter() - start
    failed = [r.run_id for r in results if not r.done]
    if failed:
        raise SystemExit(f"{kind}: runs failed: {failed}")
    return wall


def latencies(out: Path, run_ids: list[str]) -> tuple[list[float], list[float]]:
    """(scheduling latencies between consecutive runs on one worker, cold starts of each worker)."""
    by_pid: dict[int, list[dict]] = {}
    for rid in run_ids:
        for e in read_placements(out, rid):
            by_pid.setdefault(e["pid"], []).append(e)
    gaps, cold = [], []
    for events in by_pid.values():
        events.sort(key=lambda e: e["time"])
        starts = [e for e in events if e["event"] == "start"]
        cold.append(starts[0]["time"] - starts[0]["submitted"])
        gaps += [
            b["time"] - a["time"] for a, b in zip(events, events[1:]) if a["event"] == "end" and b["event"] == "start"
        ]
    return gaps, cold


def noop_round_trip(workers: int, n: int = 50) -> tuple[float, float]:
    """(mean no-op round trip, seconds to start and stop a private Ray instance)."""
    import ray

    start = time.perf_counter()
    ray.init(address="local", num_cpus=workers, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    up = time.perf_counter() - start
    try:

        @ray.remote(num_cpus=1)
        def noop() -> None:
            return None

        ray.get(noop.remote())  # start a worker
        start = time.perf_counter()
        for _ in range(n):
            ray.get(noop.remote())
        trip = (time.perf_counter() - start) / n
    finally:
        start = time.perf_counter()
        ray.shutdown()
        down = time.perf_counter() - start
    return trip, up + down


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    config = sweep_config(args.seeds, args.epochs)
    ids = [s.run_id for s in config.runs()]
    root = Path(tempfile.mkdtemp(prefix="ray-overhead-"))
    walls: dict[str, list[float]] = {"local": [], "ray": []}
    gaps: list[float] = []
    cold: list[float] = []
    try:
        for rep in range(args.repeats):
            for kind in ("local", "ray") if rep % 2 == 0 else ("ray", "local"):
                out = root / f"{kind}-{rep}"
                walls[kind].append(timed_sweep(config, out, kind, args.workers))
                if kind == "ray":
                    g, c = latencies(out, ids)
                    gaps += g
                    cold += c
                print(f"  repeat {rep + 1} {kind:5s}: {walls[kind][-1]:6.1f} s", flush=True)
        noop, instance = noop_round_trip(args.workers)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    local, ray_ = statistics.median(walls["local"]), statistics.median(walls["ray"])
    print(
        f"sweep: {len(ids)} runs (digits cnn, {args.epochs} epochs, batch 32), {args.workers} workers / Ray CPUs, "
        f"{args.repeats} repeats each, alternating"
    )
    for kind, med in (("local pool", local), ("Ray", ray_)):
        each = ", ".join(f"{w:.1f}" for w in walls["local" if kind == "local pool" else "ray"])
        print(f"{kind + ' wall (median):':25s} {med:7.1f} s   (each: {each} s)")
    print(f"overhead ratio Ray/local: {ray_ / local:7.3f}   (goal <= 1.10)")
    print(
        f"  of which a private Ray instance's start + stop: {instance:.1f} s once per sweep (none with an "
        f"existing cluster, --ray-address); ratio without it: {(ray_ - instance) / local:.3f}"
    )
    print(
        f"scheduling latency per run (worker free -> next run starts): median {1e3 * statistics.median(gaps):.1f} ms, "
        f"max {1e3 * max(gaps):.1f} ms over {len(gaps)} hand-overs"
    )
    print(f"cold start per Ray worker (submit -> first run starts): median {statistics.median(cold):.2f} s")
    print(f"no-op Ray task round trip (warm worker): {1e3 * noop:.2f} ms")


if __name__ == "__main__":
    main()
