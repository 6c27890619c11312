"""Data-parallel fit: 2 CPU processes (gloo, 127.0.0.1) reach the weights of 1 process at the same
global batch; only rank 0 writes the run folder; batch sharding; errors; the torchrun entry point."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from optimlab.data import Augment, TensorSplit, iterate_batches
from optimlab.train import TrainConfig, fit
from optimlab.train import distributed as ddp
from optimlab.train.checkpoint import DONE_FILE, HISTORY_FILE, MODEL_FILE, RUN_FILE
from optimlab.train.distributed_main import launch_local, load_config, main
from optimlab.train.run_data import prepare_data

BASE = TrainConfig(
    dataset="digits", model="mlp", optimizer="rsgdm", hparams={"lr": 0.1, "beta": 0.9}, epochs=2, batch_size=64
)


def _odd_tail_batch_size(config: TrainConfig) -> int:
    """An even global batch whose last, short batch has an odd size: it splits unevenly over 2 ranks."""
    n = len(prepare_data(config, 0).train)
    return next(b for b in range(64, 16, -2) if (n % b) % 2 == 1)


def test_two_processes_reach_the_weights_of_one_process(tmp_path):
    config = BASE.replace(batch_size=_odd_tail_batch_size(BASE))
    single = fit(config, 3, run_dir=tmp_path / "one")
    history = launch_local(config, 3, world_size=2, run_dir=tmp_path / "two", threads_per_process=1)
    one = torch.load(tmp_path / "one" / MODEL_FILE, weights_only=True)
    two = torch.load(tmp_path / "two" / MODEL_FILE, weights_only=True)
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], atol=1e-6, rtol=0)
    assert history.epochs_run == 2
    assert history.train_loss == pytest.approx(single.train_loss, abs=1e-5)
    assert history.final["accuracy"] == pytest.approx(single.final["accuracy"], abs=0.01)
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        [RUN_FILE, MODEL_FILE, HISTORY_FILE, DONE_FILE]
    )


def _logging_worker(rank: int, world: int, port: int, run_dir: str, log_dir: str) -> None:
    """A rank that records every file it writes (checkpoint.atomic_write) in log_dir/rank<r>.txt."""
    os.environ.update(
        {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(rank),
        }
    )
    torch.set_num_threads(1)
    import optimlab.train.checkpoint as checkpoint

    original = checkpoint.atomic_write
    log = Path(log_dir) / f"rank{rank}.txt"
    log.write_text("")

    def recording(path, write):
        with open(log, "a") as f:
            f.write(Path(path).name + "\n")
        original(path, write)

    checkpoint.atomic_write = recording
    epochs: list[int] = []
    history = fit(
        BASE.replace(epochs=2, max_steps_per_epoch=3),
        1,
        run_dir=run_dir,
        callback=lambda epoch, h: epochs.append(epoch),
    )
    (Path(log_dir) / f"result{rank}.json").write_text(
        json.dumps({"callbacks": epochs, "final": history.final, "val_loss": history.val_loss})
    )
    ddp.exit_finished_worker()


def test_only_rank_zero_writes_and_calls_back_and_every_rank_returns_its_history(tmp_path):
    (tmp_path / "logs").mkdir()
    mp.spawn(
        _logging_worker, args=(2, ddp.free_port(), str(tmp_path / "run"), str(tmp_path / "logs")), nprocs=2, join=True
    )
    written0 = (tmp_path / "logs" / "rank0.txt").read_text().split()
    assert (tmp_path / "logs" / "rank1.txt").read_text() == ""
    assert {RUN_FILE, "checkpoint.pt", MODEL_FILE, HISTORY_FILE, DONE_FILE} <= set(written0)
    r0, r1 = (json.loads((tmp_path / "logs" / f"result{r}.json").read_text()) for r in (0, 1))
    assert r0["callbacks"] == [1, 2] and r1["callbacks"] == []
    assert r1["final"] == r0["final"] and len(r1["val_loss"]) == 2


def _splits(n: int = 103) -> TensorSplit:
    return TensorSplit(torch.randn(n, 3, 16, 16), torch.arange(n) % 5)


@pytest.mark.parametrize("options", [{}, {"augment": Augment()}, {"sampler_weights": torch.linspace(0.1, 1.0, 103)}])
def test_shards_of_every_global_batch_are_iterate_batches_batches(options):
    split, batch = _splits(), 16
    reference = list(iterate_batches(split, batch, shuffle=True, generator=torch.Generator().manual_seed(5), **options))
    for world in (1, 2, 4):
        shards = [
            list(ddp.shard_batches(split, batch, torch.Generator().manual_seed(5), rank, world, **options))
            for rank in range(world)
        ]
        assert all(len(s) == len(reference) for s in shards)
        for i, (x, y) in enumerate(reference):
            assert all(s[i][2] == y.shape[0] for s in shards)  # every rank knows the global size
            sizes = [s[i][1].shape[0] for s in shards]
            assert max(sizes) - min(sizes) <= 1
            torch.testing.assert_close(torch.cat([s[i][0] for s in shards]), x, rtol=0, atol=0)
            assert torch.equal(torch.cat([s[i][1] for s in shards]), y)


def test_global_batch_must_split_evenly_over_the_processes(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="batch_size=63.*WORLD_SIZE=2"):
        launch_local(BASE.replace(batch_size=63), 0, world_size=2, run_dir=tmp_path)
    monkeypatch.setenv("WORLD_SIZE", "2")
    for name, value in (("RANK", "1"), ("LOCAL_RANK", "1"), ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "29999")):
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match="batch_size=63"):  # raised before any rendezvous
        fit(BASE.replace(batch_size=63), 0)
    assert not list(tmp_path.iterdir())


def test_incomplete_torchrun_environment_is_an_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(ValueError, match="MASTER_PORT"):
        ddp.detect()
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert ddp.detect() is None


def test_distributed_main_config_file_and_overrides(tmp_path, capsys):
    (tmp_path / "c.toml").write_text('model = "mlp"\nbatch_size = 32\n[hparams]\nlr = 0.2\nbeta = 0.9\n')
    config = load_config(tmp_path / "c.toml", ["epochs=1", "optimizer=rsgdm", "max_steps_per_epoch=2"])
    assert (config.batch_size, config.epochs, config.optimizer, config.hparams) == (
        32,
        1,
        "rsgdm",
        {"lr": 0.2, "beta": 0.9},
    )
    with pytest.raises(ValueError, match="unknown TrainConfig field"):
        load_config(None, ["batchsize=3"])
    assert (
        main(
            [
                "--config",
                str(tmp_path / "c.toml"),
                "--set",
                "epochs=1",
                "--set",
                "max_steps_per_epoch=2",
                "--run-dir",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["epochs_run"] == 1 and (tmp_path / "run" / DONE_FILE).exists()
