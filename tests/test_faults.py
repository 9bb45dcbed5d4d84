"""Faults a training run and its checkpoints must survive: SIGTERM/SIGKILL during training and during a
save, two writers to one folder, a full disk, flipped bytes, NaN weights, and exact resumption."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from agent_helpers import CHAIN_ACT, CHAIN_OBS, TINY, chain_buffers, weights
from conftest import write_dataset

import latent_skills.checkpoint.writing as checkpoint_module
from latent_skills import LDCP, LDCQ, LDGC, LatentSkillAgent, TrainingDivergedError, TrainingInterrupted
from latent_skills.agents.ldcq import CandidateBank
from latent_skills.checkpoint import seal_config
from latent_skills.config import LDCPConfig, LDCQConfig, LDGCConfig
from latent_skills.hub import CheckpointError, read_checkpoint, write_checkpoint

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {**TINY, "horizon": 2, "skills_steps": 12, "prior_steps": 12, "q_steps": 12}


@pytest.fixture
def chain(minari_root):
    return write_dataset(
        "test/chain/faults-v0", chain_buffers(), observation_space=CHAIN_OBS, action_space=CHAIN_ACT
    )


def assert_same_weights(a: LatentSkillAgent, b: LatentSkillAgent, close: tuple[str, ...] = ()) -> None:
    """Bit-identical weights, but for modules named in ``close``: equal to float32 rounding."""
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        if key.startswith(close):
            torch.testing.assert_close(wa[key], wb[key], rtol=1e-4, atol=1e-6)
        else:
            assert torch.equal(wa[key], wb[key]), key


def sigterm_at(stage: str, step: int):
    """A callback that sends this process SIGTERM during ``stage`` (as `timeout` or a cluster would)."""

    def callback(locals_, globals_) -> bool:
        if locals_["name"] == stage and locals_["step"] == step:
            os.kill(os.getpid(), signal.SIGTERM)
        return True

    return callback


# ---------------------------------------------------------------- resume exactly


@pytest.mark.parametrize("stage", ["skills", "prior", "q"])
def test_sigterm_then_resume_gives_the_uninterrupted_weights(chain, tmp_path, stage):
    straight = LDCQ.from_dataset(chain, seed=3, **SETTINGS).learn()
    agent = LDCQ.from_dataset(chain, seed=3, **SETTINGS)
    with pytest.raises(TrainingInterrupted, match="SIGTERM") as caught:
        agent.learn(callback=sigterm_at(stage, 6), save_path=tmp_path / "run")
    assert caught.value.signal_number == signal.SIGTERM
    assert "learn(resume=True)" in str(caught.value)
    resumed = LDCQ.load(tmp_path / "run")
    assert resumed.num_timesteps < straight.num_timesteps
    resumed.learn(resume=True)
    assert_same_weights(straight, resumed)
    assert resumed.num_timesteps == straight.num_timesteps
    assert resumed.stages_completed == ["skills", "prior", "q"]
    with pytest.raises(ValueError, match="Nothing to resume"):
        resumed.learn(resume=True)


def test_resume_is_exact_for_stages_with_their_own_streams(minari_root, pointmaze_dataset, tmp_path):
    # LDGC draws hindsight goals from a second generator; LDCP's world model trains after the prior;
    # LDCQ's optional distillation starts its student from the teacher at its first step only
    cases = ((LDGC, LDGCConfig, "prior"), (LDCP, LDCPConfig, "dynamics"), (LDCQ, LDCQConfig, "distill"))
    for cls, config, stage in cases:
        settings = {k: v for k, v in SETTINGS.items() if k in config.field_names()}
        settings.update(dynamics_steps=12) if cls is LDCP else None
        settings.update(distill_steps=12) if cls is LDCQ else None
        straight = cls.from_dataset(pointmaze_dataset, seed=1, **settings).learn()
        with pytest.raises(TrainingInterrupted):
            cls.from_dataset(pointmaze_dataset, seed=1, **settings).learn(
                callback=sigterm_at(stage, 4), save_path=tmp_path / cls.__name__
            )
        resumed = cls.load(tmp_path / cls.__name__).learn(resume=True)
        assert_same_weights(straight, resumed)


def test_save_every_writes_resumable_checkpoints_inside_a_stage(chain, tmp_path):
    seen: list[tuple[str, int]] = []

    def record(locals_, globals_) -> bool:
        config = tmp_path / "run" / "config.json"
        state = json.loads(config.read_text()).get("training_state") if config.exists() else None
        if state is not None:
            seen.append((state["stage"], state["step"]))
        return True

    LDCQ.from_dataset(chain, **SETTINGS).learn(save_path=tmp_path / "run", save_every=5, callback=record)
    assert ("skills", 5) in seen and ("prior", 10) in seen and ("q", 5) in seen
    final = json.loads((tmp_path / "run" / "config.json").read_text())
    assert "training_state" not in final  # the run finished: nothing to resume
    assert not (tmp_path / "run" / "training_state.safetensors").exists()
    with pytest.raises(ValueError, match="save_path"):
        LDCQ.from_dataset(chain, **SETTINGS).learn(save_every=5)


def test_sigkill_during_training_keeps_the_last_checkpoint(minari_root, tmp_path):
    """A real kill -9 from outside: the folder holds the last complete checkpoint, which resumes."""
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(REPO / "tests")!r})
        from agent_helpers import CHAIN_ACT, CHAIN_OBS, TINY, chain_buffers, weights
        from conftest import write_dataset
        from latent_skills import LDCQ
        ds = write_dataset("test/chain/kill-v0", chain_buffers(), observation_space=CHAIN_OBS, action_space=CHAIN_ACT)
        settings = {{**TINY, "horizon": 2, "skills_steps": 100000, "prior_steps": 12, "q_steps": 12}}
        def slow(locals_, globals_):
            if locals_["step"] == 20:
                print("ready", flush=True)
            time.sleep(0.002)
            return True
        LDCQ.from_dataset(ds, **settings).learn(save_path={str(tmp_path / "run")!r}, save_every=3, callback=slow)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=os.environ.copy())
    assert child.stdout is not None and child.stdout.readline().strip() == b"ready"
    time.sleep(0.3)
    child.kill()
    child.wait(timeout=30)
    agent = LDCQ.load(tmp_path / "run")  # whole, whatever instant the kill hit
    state = agent._resume_state
    assert state is not None and state[0]["stage"] == "skills" and state[0]["step"] >= 21
    assert state[0]["step"] % 3 == 0  # one of the save_every checkpoints, whole


def test_sigterm_from_outside_stops_the_cli_cleanly(minari_root, tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(REPO / "tests")!r})
        from agent_helpers import CHAIN_ACT, CHAIN_OBS, chain_buffers
        from conftest import write_dataset
        write_dataset("test/chain/term-v0", chain_buffers(), observation_space=CHAIN_OBS, action_space=CHAIN_ACT)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, env=os.environ.copy())
    out = tmp_path / "run"
    cli = [sys.executable, "-m", "latent_skills", "train", "test/chain/term-v0", "--out", str(out)]
    small = [
        "--set",
        "horizon=2",
        "--set",
        "vae_hidden=16",
        "--set",
        "skills_steps=100000",
        "--eval-episodes",
        "0",
        "--save-every",
        "5",
    ]
    child = subprocess.Popen(
        cli + small, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ.copy()
    )
    deadline = time.time() + 120
    while not (out / "config.json").exists() and time.time() < deadline:  # 5 steps are done
        time.sleep(0.1)
    child.send_signal(signal.SIGTERM)
    output = child.communicate(timeout=60)[0].decode()
    assert child.returncode == 128 + signal.SIGTERM, output
    assert "Traceback" not in output
    assert f"latent-skills train --resume {out}" in output
    meta = json.loads((out / "config.json").read_text())
    assert meta["training_state"]["stage"] == "skills" and meta["training_state"]["step"] > 5


# ---------------------------------------------------------------- stage bookkeeping


def test_a_stage_is_done_only_when_it_finished(chain):
    agent = LDCQ.from_dataset(chain, **SETTINGS)
    agent.learn(callback=lambda locals_, globals_: locals_["step"] < 3)
    assert agent.stages_completed == []
    with pytest.raises(ValueError, match="total_timesteps must be ≥ 1"):
        agent.learn(total_timesteps=0)
    with pytest.raises(ValueError, match=r"stages=\[\] trains nothing"):
        agent.learn(stages=[])
    with pytest.raises(ValueError, match=r"stage 'q' trains over \['skills', 'prior'\]"):
        agent.learn(stages=["q"])
    with pytest.raises(ValueError, match="leaves stages"):
        agent.learn(total_timesteps=2)
    assert agent.stages_completed == [] and agent.num_timesteps == 4  # steps 0-3 ran
    agent.learn()
    assert agent.stages_completed == ["skills", "prior", "q"]
    agent.learn(stages=["skills"])  # retrained skills: the prior and Q built on the old ones are stale
    assert agent.stages_completed == ["skills"]


def test_divergence_keeps_finite_weights(chain):
    agent = LDCQ.from_dataset(chain, **SETTINGS)
    before = weights(agent)
    # an infinite learning rate passes no config validation; set it behind its back
    agent.config = dataclasses.replace(agent.config, skills_lr=float("inf"))
    # step 0's update makes the weights NaN; step 1's loss shows it: back to the weights before it
    with pytest.raises(TrainingDivergedError, match="Stage 'skills': the loss became nan at step 1"):
        agent.learn(stages=["skills"])
    for key, value in weights(agent).items():
        assert torch.equal(value, before[key]), key
    assert "skills" not in agent.stages_completed


def test_on_an_accelerator_the_flags_are_read_every_log_interval(chain, monkeypatch):
    """check_interval(cuda) is log_interval: the loop reads the device at checks only, and a NaN
    found there restores the weights of the last check that passed."""
    from latent_skills.agents import divergence, training

    monkeypatch.setattr(training, "check_interval", lambda device, log_interval: 4)
    reads = []
    original = divergence.DivergenceWatch.check
    monkeypatch.setattr(
        divergence.DivergenceWatch,
        "check",
        lambda self, *a, **k: (reads.append(1), original(self, *a, **k))[1],
    )
    agent = LDCQ.from_dataset(chain, **{**SETTINGS, "skills_steps": 10})
    agent.learn(stages=["skills"])
    assert len(reads) == 2 + 1  # at steps 3 and 7, and at the stage's end
    reads.clear()
    before = weights(agent)
    agent.config = dataclasses.replace(agent.config, skills_lr=float("inf"))
    # step 0's update makes the weights NaN, found at the check of step 3: back to the weights of the
    # last good check, the stage's start
    with pytest.raises(TrainingDivergedError, match="Stage 'skills': the loss became nan at step 1"):
        agent.learn(stages=["skills"])
    assert len(reads) == 1
    for key, value in weights(agent).items():
        assert torch.equal(value, before[key]), key


def test_batches_gathered_on_the_device_train_the_same_weights(pointmaze_dataset, monkeypatch):
    """The accelerator path (arrays uploaded once, batches gathered on the device), run on a CPU."""
    from latent_skills.agents.replay import DevicePrioritizedSampler
    from latent_skills.agents.stages import base as stage_base

    device_updates: list[int] = []
    original = DevicePrioritizedSampler.update

    def counted(self, index, td_error):
        device_updates[-1] += 1
        assert isinstance(index, torch.Tensor) and isinstance(td_error, torch.Tensor)
        return original(self, index, td_error)

    monkeypatch.setattr(DevicePrioritizedSampler, "update", counted)
    for cls, config in ((LDCQ, None), (LDCP, LDCPConfig)):
        device_updates.append(0)
        settings = {k: v for k, v in SETTINGS.items() if config is None or k in config.field_names()}
        settings.update(dynamics_steps=12) if cls is LDCP else None
        host = cls.from_dataset(pointmaze_dataset, seed=1, **settings).learn()
        with monkeypatch.context() as patch:
            patch.setattr(stage_base, "gathers_on_device", lambda device: True)
            on_device = cls.from_dataset(pointmaze_dataset, seed=1, **settings).learn()
            assert any(key.startswith("device_arrays:") for key in on_device.data.extras)
        # the same batches; Q's priorities are kept on the device there, equal to float32 rounding
        assert_same_weights(host, on_device, close=("critic",))
    assert device_updates == [
        SETTINGS["q_steps"],
        0,
    ]  # every LDCQ Q step updated the device tree (LDCP has no Q)


def test_predict_refuses_non_finite_observations(chain):
    agent = LDCQ.from_dataset(chain, **SETTINGS)
    with pytest.raises(ValueError, match=r"NaN or inf \(batch rows \[1\]\)"):
        agent.predict(np.array([[0.0], [np.nan]]))
    # finite but huge: the networks overflow to NaN actions, which are refused, not returned
    with pytest.raises(ValueError, match=r"overflowed on the observation \(batch rows \[1\]\)"):
        agent.predict(np.array([[0.0], [1e30]]), deterministic=True)
    action, _ = agent.predict(np.array([[0.0], [1e3]]), deterministic=True)  # far, but finite: acts
    assert np.isfinite(action).all()


def test_the_memory_mapped_bank_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    bank = CandidateBank(np.arange(10), 4, 3, ram_gb=1e-9)
    assert isinstance(bank.values, np.memmap)
    assert list(tmp_path.iterdir()) == []  # unlinked as soon as it was mapped
    bank.values[:] = 1.5
    assert float(bank[np.array([3])].sum()) == 1.5 * 12


# ---------------------------------------------------------------- the checkpoint files


def tiny_tensors(value: float = 1.0) -> dict[str, torch.Tensor]:
    return {"w": torch.full((64, 64), value)}


def test_flipped_byte_or_nan_weights_are_refused(tmp_path):
    folder = write_checkpoint(tmp_path / "ck", {"agent_type": "LDCQ"}, tiny_tensors())
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-10] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match the SHA-256"):
        read_checkpoint(folder)
    write_checkpoint(tmp_path / "nan", {"agent_type": "LDCQ"}, tiny_tensors(float("nan")))
    with pytest.raises(CheckpointError, match="non-finite"):
        read_checkpoint(tmp_path / "nan")


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_checkpoint_files_get_the_umask_mode_not_a_temp_files_0600(tmp_path, umask):
    old = os.umask(umask)
    try:
        folder = write_checkpoint(tmp_path / "ck", {"agent_type": "LDCQ"}, tiny_tensors(), tiny_tensors())
    finally:
        os.umask(old)
    for name in ("config.json", "model.safetensors", "training_state.safetensors"):
        assert (folder / name).stat().st_mode & 0o777 == 0o666 & ~umask, name
    assert folder.stat().st_mode & 0o777 == 0o777 & ~umask


def test_a_full_disk_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    folder = write_checkpoint(tmp_path / "ck", {"agent_type": "LDCQ", "n": 1}, tiny_tensors(1.0))
    (folder / "logs").mkdir()
    (folder / "logs" / "progress.csv").write_text("a\n1\n")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_module, "save_file", full)
    with pytest.raises(OSError, match="No space left"):
        write_checkpoint(folder, {"agent_type": "LDCQ", "n": 2}, tiny_tensors(2.0))
    meta, tensors = read_checkpoint(folder)
    assert meta["n"] == 1 and float(tensors["w"][0, 0]) == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # no staging folder left
    assert (folder / "logs" / "progress.csv").read_text() == "a\n1\n"


def test_a_save_killed_between_its_renames_loses_nothing(tmp_path, monkeypatch):
    folder = write_checkpoint(tmp_path / "ck", {"agent_type": "LDCQ", "n": 1}, tiny_tensors(1.0))
    (folder / "eval.json").write_text("{}")
    real_rename = os.rename
    calls = []

    def rename_then_die(src, dst):
        calls.append(src)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process dies after moving the old folder aside
        real_rename(src, dst)

    monkeypatch.setattr(checkpoint_module.os, "rename", rename_then_die)
    with pytest.raises(KeyboardInterrupt):
        write_checkpoint(folder, {"agent_type": "LDCQ", "n": 2}, tiny_tensors(2.0))
    monkeypatch.setattr(checkpoint_module.os, "rename", real_rename)
    assert not folder.exists()
    meta, _ = read_checkpoint(folder)  # the old checkpoint, found where the save left it
    assert meta["n"] == 1
    write_checkpoint(folder, {"agent_type": "LDCQ", "n": 3}, tiny_tensors(3.0))
    assert read_checkpoint(folder)[0]["n"] == 3
    assert (folder / "eval.json").read_text() == "{}"  # carried over from the recovered folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # leftovers cleaned


def test_concurrent_writers_and_a_reader_see_whole_checkpoints(tmp_path):
    folder = tmp_path / "ck"
    write_checkpoint(folder, {"agent_type": "LDCQ", "value": 0.0}, tiny_tensors(0.0))
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(offset: float) -> None:
        try:
            for i in range(25):
                value = offset + i
                write_checkpoint(folder, {"agent_type": "LDCQ", "value": value}, tiny_tensors(value))
        except BaseException as exc:  # noqa: BLE001 - every failure is reported
            errors.append(exc)

    reads = []

    def reader() -> None:
        while not stop.is_set():
            try:
                meta, tensors = read_checkpoint(folder)
                reads.append((meta["value"], float(tensors["w"][0, 0])))
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

    threads = [threading.Thread(target=writer, args=(o,)) for o in (0.0, 1000.0)]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    watcher.join()
    assert errors == [], errors
    assert reads and all(meta == weight for meta, weight in reads)  # never a mixed pair
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]


def test_sigkill_during_saves_leaves_a_loadable_folder(tmp_path):
    script = textwrap.dedent(
        f"""
        import torch
        from latent_skills.hub import write_checkpoint
        print("ready", flush=True)
        i = 0
        while True:
            i += 1
            write_checkpoint({str(tmp_path / "ck")!r}, {{"agent_type": "LDCQ", "i": i}}, {{"w": torch.full((256, 256), float(i))}})
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline().strip() == b"ready"
    for _ in range(5):  # several kills at different instants of a save
        time.sleep(0.4)
        child.kill()
        child.wait(timeout=30)
        meta, tensors = read_checkpoint(tmp_path / "ck")
        assert float(tensors["w"][0, 0]) == meta["i"]
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
        assert child.stdout is not None and child.stdout.readline().strip() == b"ready"
    child.kill()
    child.wait(timeout=30)
    write_checkpoint(tmp_path / "ck", {"agent_type": "LDCQ", "i": -1}, tiny_tensors())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]


def test_a_checkpoint_missing_config_fields_is_refused_not_defaulted(chain, tmp_path):
    LDCQ.from_dataset(chain, preset="quick", **{"horizon": 2, "skills_steps": 2}).save(tmp_path / "ck")
    meta = json.loads((tmp_path / "ck" / "config.json").read_text())
    del meta["config"]["act_candidates"], meta["config"]["exec_horizon"]
    (tmp_path / "ck" / "config.json").write_text(json.dumps(seal_config(meta)))
    with pytest.raises(CheckpointError, match=r"lacks fields \['act_candidates', 'exec_horizon'\]"):
        LatentSkillAgent.load(tmp_path / "ck")


def test_device_copies_follow_their_host_arrays(tmp_path, monkeypatch):
    """A memory-mapped array goes up in slices; a freed array's copy is dropped with it."""
    import gc

    from latent_skills.agents import device_data

    monkeypatch.setattr(device_data, "MEMMAP_SLICE_BYTES", 64)  # several slices for this small array
    arrays = device_data.DeviceArrays(torch.device("cpu"))
    mapped = np.memmap(tmp_path / "bank.f16", np.float16, "w+", shape=(50, 3, 2))
    mapped[:] = np.arange(300, dtype=np.float16).reshape(50, 3, 2)
    assert torch.equal(arrays.gather(mapped, np.array([49, 0, 7])), torch.from_numpy(mapped[[49, 0, 7]]))
    replaced = np.ones(10)
    arrays(replaced)
    assert len(arrays._copies) == 2
    del replaced
    gc.collect()
    assert len(arrays._copies) == 1  # only the memmap's copy is left
