"""Data-parallel training: two CPU processes under torchrun (gloo) on a tiny real data set."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.trainer.conftest import tiny_config
from trainer.loop import _EpochSampler

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_two_gloo_processes_train_one_model(tiny_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    config = tiny_config(
        tiny_data,
        run,
        tmp_path / "cache",
        epochs=3,
        max_steps_per_epoch=None,
        batch_size=8,
        validation={"holdout_identities": 0},
    )
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        str(REPO / "tests" / "trainer" / "ddp_worker.py"),
        str(config_path),
        str(tmp_path),
    ]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    assert all(r["world"] == 2 for r in ranks)
    # Both ranks end with one model: every parameter and every BatchNorm statistic equal.
    for key, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][key]), key
    # An epoch is shared out: 160 crops / (8 x 2 processes) = 10 steps each, not 20.
    assert ranks[0]["steps"] == ranks[1]["steps"] == 3 * 10
    losses = [record["loss"] for record in ranks[0]["history"]]
    assert losses[-1] < losses[0], losses
    # Only rank 0 writes the run folder, once.
    assert (run / "last.pt").is_file() and (run / "train.log").is_file()
    assert (run / "train.log").read_text().count("epoch 3 done") == 1


def test_the_shares_of_an_epoch_are_disjoint_and_cover_it() -> None:
    shares = [_EpochSampler(103, seed=5, rank=r, world_size=3) for r in range(3)]
    orders = [list(iter(s)) for s in shares]
    assert sorted(i for order in orders for i in order) == list(range(103))
    assert [len(s) for s in shares] == [len(o) for o in orders] == [35, 34, 34]
    single = _EpochSampler(103, seed=5).order()
    assert orders[1] == single[1::3]  # one order for all ranks, dealt out


@pytest.mark.parametrize(("env", "message"), [({"WORLD_SIZE": "2", "RANK": "2"}, "not within")])
def test_bad_torchrun_variables_are_a_clear_error(env: dict, message: str, monkeypatch) -> None:
    from trainer.distributed import context_from_env

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match=message):
        context_from_env()
