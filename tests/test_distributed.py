"""Data-parallel training over torch.distributed (gloo, CPU), with 2 processes started as torchrun
starts them (RANK, WORLD_SIZE, MASTER_ADDR/PORT in the environment) and once by torchrun itself."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from agent_helpers import TINY

from latent_skills import LDCQ
from latent_skills.agents import distributed

TESTS = Path(__file__).parent
# Two processes, one gradient each, summed: the same as one process up to float summation order.
TOLERANCE = 1e-5

WORKER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    import torch
    torch.set_num_threads(1)
    sys.path.insert(0, sys.argv[1])
    from agent_helpers import TINY
    from latent_skills import LDCQ
    from latent_skills.agents import distributed, stages

    mode, dataset, out = sys.argv[2], sys.argv[3], Path(sys.argv[4])
    rank = int(os.environ["RANK"])
    if mode == "train":
        # the Q stage from a shared base: rows, bank and priorities are exactly a one-process run's
        agent = LDCQ.load(out / "base", device="cpu").learn(stages=["q"])
        agent.save(out / f"q-rank{rank}")
        # a whole run, saved by rank 0 as it goes
        agent = LDCQ.from_dataset(dataset, seed=0, device="cpu", **TINY)
        agent.learn(save_path=out / "full", save_every=10)
        agent.save(out / f"full-rank{rank}")
    elif mode == "die":
        if rank == 1:
            loss = stages.SkillsStage.loss
            def dying(self, step):
                if step == 5:
                    os._exit(3)
                return loss(self, step)
            stages.SkillsStage.loss = dying
        LDCQ.from_dataset(dataset, seed=0, device="cpu", **TINY).learn()
    distributed.destroy()
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(
    mode: str, dataset: str, out: Path, world: int = 2, timeout_s: float = 20
) -> list[subprocess.Popen]:
    script = out / "worker.py"
    script.write_text(WORKER)
    port = free_port()
    procs = []
    for rank in range(world):
        env = dict(
            os.environ,
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE=str(world),
            LOCAL_WORLD_SIZE=str(world),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            OMP_NUM_THREADS="1",
            LATENT_SKILLS_DIST_TIMEOUT=str(timeout_s),
        )
        args = [sys.executable, str(script), str(TESTS), mode, dataset, str(out)]
        procs.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    return procs


def finish(proc: subprocess.Popen, timeout: float) -> tuple[int, str]:
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        pytest.fail(f"a rank did not finish within {timeout} s:\n{output.decode()[-3000:]}")
    return proc.returncode, output.decode()


def tensors(agent: LDCQ) -> dict[str, torch.Tensor]:
    return {
        f"{prefix}.{name}": value
        for prefix, module in agent.modules().items()
        for name, value in module.state_dict().items()
    }


@pytest.fixture
def two_process_run(box_dataset, tmp_path):
    """A base agent (skills and prior) trained here; then 2 processes train its Q stage and a whole
    run from scratch."""
    base = LDCQ.from_dataset(box_dataset, seed=0, device="cpu", **TINY).learn(stages=["skills", "prior"])
    base.save(tmp_path / "base")
    procs = launch("train", box_dataset.spec.dataset_id, tmp_path)
    for proc in procs:
        rc, output = finish(proc, 120)
        assert rc == 0, output[-3000:]
    return box_dataset, tmp_path


def test_two_processes_match_one_process_and_each_other_and_say_so(two_process_run):
    dataset, out = two_process_run
    one = LDCQ.load(out / "base", device="cpu").learn(stages=["q"])
    rank0, rank1 = (LDCQ.load(out / f"q-rank{r}", device="cpu") for r in (0, 1))
    for name, value in tensors(one).items():
        assert torch.equal(tensors(rank0)[name], tensors(rank1)[name]), name
        torch.testing.assert_close(tensors(rank0)[name], value, rtol=0, atol=TOLERANCE, msg=name)
    # the whole run: every stage draws the global batch's noise and takes its rows, so all three
    # stages match one process too
    full0, full1 = (LDCQ.load(out / f"full-rank{r}", device="cpu") for r in (0, 1))
    single = LDCQ.from_dataset(dataset, seed=0, device="cpu", **TINY).learn()
    for name, value in tensors(full0).items():
        assert torch.equal(value, tensors(full1)[name]), name
        torch.testing.assert_close(value, tensors(single)[name], rtol=0, atol=TOLERANCE, msg=name)
    saved = LDCQ.load(out / "full", device="cpu")
    for name, value in tensors(saved).items():
        assert torch.equal(value, tensors(full0)[name]), name
    # the checkpoint says how many processes trained
    assert json.loads((out / "full" / "config.json").read_text())["world_size"] == 2
    assert json.loads((out / "base" / "config.json").read_text())["world_size"] == 1
    assert LDCQ.load(out / "full", device="cpu").world_size == 2


def test_a_dead_rank_makes_the_other_fail_not_hang(box_dataset, tmp_path):
    start = time.monotonic()
    survivor, dying = launch("die", box_dataset.spec.dataset_id, tmp_path, timeout_s=20)
    assert finish(dying, 60)[0] == 3
    rc, output = finish(survivor, 60)
    assert rc != 0, output[-3000:]
    assert time.monotonic() - start < 60


def test_torchrun_cli_trains_on_two_processes(box_dataset, tmp_path):
    out = tmp_path / "run"
    settings = [f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in TINY.items()]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd += ["-m", "latent_skills", "train", box_dataset.spec.dataset_id, "--out", str(out)]
    cmd += ["--eval-episodes", "0", "--save-every", "0", "--device", "cpu"]
    for setting in settings:
        cmd += ["--set", setting]
    env = dict(os.environ, OMP_NUM_THREADS="1", LATENT_SKILLS_DIST_TIMEOUT="30")
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert result.stdout.count("data-parallel training on 2 processes") == 1  # rank 0 says it, once
    assert json.loads((out / "config.json").read_text())["world_size"] == 2
    assert (out / "logs" / "progress.csv").is_file()


def test_one_process_is_not_distributed(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not distributed.init()
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    assert distributed.shard_rows(32) == slice(0, 32)


def test_timeout_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "25")
    assert distributed.timeout().total_seconds() == 25
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "soon")
    with pytest.raises(ValueError, match=distributed.TIMEOUT_ENV):
        distributed.timeout()
