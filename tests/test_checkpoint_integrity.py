"""Checkpoints that check themselves (issue #25): config.json's own hash, tensor files checked from their
headers before anything is built or read, a size budget derived from the file, and action bounds that
may be infinite. Fault-injection style: bit flips, doctored configs, damaged headers."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from agent_helpers import TINY, weights
from conftest import random_box_buffers, write_dataset
from safetensors.torch import save_file

from latent_skills import LDCQ, LatentSkillAgent
from latent_skills.checkpoint import (
    CONFIG_HASH_KEY,
    FORMAT_VERSION,
    config_digest,
    file_sha256,
    seal_config,
)
from latent_skills.hub import CheckpointError, read_checkpoint, write_checkpoint

SETTINGS = {**TINY, "skills_steps": 4, "prior_steps": 4, "q_steps": 4}
UNBOUNDED = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float64)


@pytest.fixture
def unbounded(minari_root):
    """A valid dataset whose action space is an unbounded Box (±inf bounds)."""
    buffers = random_box_buffers(np.random.default_rng(0), [12, 9, 14, 8], [True, False, True, False])
    return write_dataset("test/unbounded/box-v0", buffers, observation_space=OBS, action_space=UNBOUNDED)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One untrained tiny LDCQ saved (format 6): the files the fault tests damage copies of."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(tmp_path_factory.mktemp("minari")))
        buffers = random_box_buffers(np.random.default_rng(1), [10, 12, 9], [True, False, True])
        bounded = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        dataset = write_dataset("test/integrity/box-v0", buffers, observation_space=OBS, action_space=bounded)
        agent = LDCQ.from_dataset(dataset, **{**SETTINGS, "skills_lr": 5e-05})  # an exponent in the JSON
    return agent.save(tmp_path_factory.mktemp("saved") / "agent")


def copy_of(folder: Path, to: Path) -> Path:
    to.mkdir()
    for name in ("config.json", "model.safetensors"):
        (to / name).write_bytes((folder / name).read_bytes())
    return to


def rewrite(folder: Path, edit) -> Path:
    """Edit config.json on purpose and reseal it, as a hostile uploader (or a careful user) would."""
    meta = json.loads((folder / "config.json").read_text())
    edit(meta)
    (folder / "config.json").write_text(json.dumps(seal_config(meta), indent=2))
    return folder


# ------------------------------------------------------------------------ unbounded action spaces


def test_an_unbounded_box_dataset_saves_loads_and_resumes(unbounded, tmp_path):
    agent = LDCQ.from_dataset(unbounded, **SETTINGS).learn(stages=["skills"])
    agent.save(tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "config.json").read_text())
    assert meta["spec"]["action_low"] == [-math.inf, -math.inf]  # the bounds as recorded
    resumed = LDCQ.load(tmp_path / "run")
    assert torch.equal(resumed.vae.decoder.action_high, torch.full((2,), math.inf))
    assert {k: v.tolist() for k, v in weights(resumed).items()} == {
        k: v.tolist() for k, v in weights(agent).items()
    }
    resumed.learn()  # the remaining stages, from the checkpoint
    assert resumed.stages_completed == ["skills", "prior", "q"]
    resumed.save(tmp_path / "run")
    final = LatentSkillAgent.load(tmp_path / "run")
    action, _ = final.predict(np.zeros(3), deterministic=True)
    assert action.shape == (2,) and np.isfinite(action).all()


def test_only_a_bound_may_hold_its_own_infinity(tmp_path):
    inf = math.inf
    allowed = {
        "vae.decoder.action_low": torch.tensor([-inf, 0.0]),
        "vae.decoder.action_high": torch.tensor([inf, 1.0]),
    }
    read_checkpoint(write_checkpoint(tmp_path / "ok", {"agent_type": "LDCQ"}, allowed))
    for name, values in [
        ("vae.decoder.action_low", [inf, 0.0]),  # a lower bound of +inf is no bound
        ("vae.decoder.action_high", [-inf, 1.0]),
        ("vae.decoder.action_high", [math.nan, 1.0]),
        ("vae.decoder.weight", [inf, 1.0]),  # a real weight: never
    ]:
        folder = write_checkpoint(
            tmp_path / name / str(values), {"agent_type": "LDCQ"}, {name: torch.tensor(values)}
        )
        with pytest.raises(CheckpointError, match="non-finite"):
            read_checkpoint(folder)


def test_bounds_that_disagree_with_the_config_are_refused(saved, tmp_path):
    folder = copy_of(saved, tmp_path / "ck")
    rewrite(folder, lambda meta: meta["spec"].update(action_high=[2.0, 2.0]))
    with pytest.raises(CheckpointError, match="differs from the action bounds"):
        LDCQ.load(folder)


# ------------------------------------------------------------------------ config.json's integrity


def test_config_json_records_its_own_canonical_hash(saved):
    meta = json.loads((saved / "config.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION == 7
    assert meta[CONFIG_HASH_KEY] == config_digest(meta)
    assert set(meta["files"]) == {"model.safetensors"}
    # canonical: the same config written another way (key order, indentation) keeps its hash
    reordered = dict(reversed(list(meta.items())))
    assert config_digest(reordered) == meta[CONFIG_HASH_KEY]


def test_every_sampled_one_bit_flip_of_config_json_is_refused(saved, tmp_path):
    """Of each byte, one random bit: a sample of 400 flips over the whole file (header to hash). A flip
    may load only where it changes nothing the loader reads: 'e' -> 'E' in a number's exponent is the
    one such flip (the hash is over the parsed config, so it survives reformatting)."""
    data = (saved / "config.json").read_bytes()
    assert b"5e-05" in data
    original = json.loads(data)
    rng = np.random.default_rng(25)
    positions = [*rng.choice(len(data), size=min(400, len(data)), replace=False), data.index(b"5e-05") + 1]
    folder = copy_of(saved, tmp_path / "ck")
    start = time.perf_counter()
    refused = loaded = 0
    for position in positions:
        flipped = bytearray(data)
        flipped[position] ^= 1 << int(rng.integers(8)) if position != positions[-1] else 0x20  # 'e' -> 'E'
        (folder / "config.json").write_bytes(bytes(flipped))
        try:
            LatentSkillAgent.load(folder)
        except CheckpointError:
            refused += 1
            continue
        loaded += 1
        assert (data[position], flipped[position]) == (ord("e"), ord("E")), f"flip at {position} loaded"
        assert json.loads(bytes(flipped)) == original  # the same agent, not another one
    assert loaded >= 1 and refused + loaded == len(positions)
    assert time.perf_counter() - start < 60


def test_every_sampled_one_bit_flip_of_the_weights_is_refused(saved, tmp_path):
    """The reader parses safetensors itself (header first, hashed in a stream): 150 sampled flips,
    a third of them in the 8-byte length and the JSON header, every one a CheckpointError."""
    data = (saved / "model.safetensors").read_bytes()
    header_end = 8 + int.from_bytes(data[:8], "little")
    rng = np.random.default_rng(26)
    positions = [*rng.integers(0, header_end, 50), *rng.integers(header_end, len(data), 100)]
    folder = copy_of(saved, tmp_path / "ck")
    for position in positions:
        flipped = bytearray(data)
        flipped[position] ^= 1 << int(rng.integers(8))
        (folder / "model.safetensors").write_bytes(bytes(flipped))
        with pytest.raises(CheckpointError):
            LatentSkillAgent.load(folder)


@pytest.mark.parametrize(
    "damage",
    [
        "delete files",
        "delete files and reseal",
        "delete the config hash",
        "empty files table and reseal",
        "files not a table",
    ],
)
def test_the_hash_table_cannot_be_taken_away(saved, tmp_path, damage):
    folder = copy_of(saved, tmp_path / "ck")
    meta = json.loads((folder / "config.json").read_text())
    if damage == "delete files":
        del meta["files"]
    elif damage == "delete files and reseal":
        del meta["files"]
        meta = seal_config(meta)
    elif damage == "delete the config hash":
        del meta[CONFIG_HASH_KEY]
    elif damage == "empty files table and reseal":
        meta = seal_config({**meta, "files": {}})
    else:
        meta = seal_config({**meta, "files": "none"})
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="damaged"):
        LatentSkillAgent.load(folder)


def test_an_older_format_without_a_config_hash_still_loads_but_needs_its_file_hashes(saved, tmp_path):
    folder = copy_of(saved, tmp_path / "v5")
    meta = json.loads((folder / "config.json").read_text())
    del meta[CONFIG_HASH_KEY]
    meta["format_version"] = 5
    (folder / "config.json").write_text(json.dumps(meta))
    assert isinstance(LatentSkillAgent.load(folder), LDCQ)
    del meta["files"]
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="records no file hashes"):
        LatentSkillAgent.load(folder)


def test_a_flipped_format_version_is_not_taken_for_a_newer_format(saved, tmp_path):
    folder = copy_of(saved, tmp_path / "ck")
    text = (folder / "config.json").read_text()
    (folder / "config.json").write_text(text.replace('"format_version": 7', '"format_version": 8', 1))
    with pytest.raises(CheckpointError, match="newer.*or it is damaged"):
        LatentSkillAgent.load(folder)


@pytest.mark.parametrize("content", ["[" * 100_000, '{"a": 1}' + " " * (17 << 20)])
def test_deeply_nested_or_huge_config_json_is_one_clear_error(saved, tmp_path, content):
    folder = copy_of(saved, tmp_path / "ck")
    (folder / "config.json").write_text(content)
    with pytest.raises(CheckpointError, match="nested too deeply|over 16 MB"):
        LatentSkillAgent.load(folder)


# ------------------------------------------------------------------------ tensors against their headers


def rewrite_weights(folder: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Replace model.safetensors and record its hash, resealed: only the contents are wrong."""
    save_file(tensors, str(folder / "model.safetensors"))
    digest = file_sha256(folder / "model.safetensors")
    rewrite(folder, lambda meta: meta["files"].update({"model.safetensors": digest}))


def test_float64_weights_that_overflow_float32_are_refused(saved, tmp_path):
    folder = copy_of(saved, tmp_path / "ck")
    _, tensors = read_checkpoint(folder)
    name = next(k for k, v in tensors.items() if v.is_floating_point() and v.numel() > 1)
    tensors[name] = torch.full(tensors[name].shape, 1e300, dtype=torch.float64)  # finite, as float64
    rewrite_weights(folder, tensors)
    with pytest.raises(CheckpointError, match=rf"{name} is torch.float64, the config's model torch.float32"):
        LatentSkillAgent.load(folder)


def test_missing_extra_and_misshapen_tensors_are_named(saved, tmp_path):
    folder = copy_of(saved, tmp_path / "ck")
    _, tensors = read_checkpoint(folder)
    first, second = sorted(tensors)[:2]
    del tensors[first]
    tensors[second] = torch.zeros(3, 3)
    tensors["vae.surplus"] = torch.zeros(1)
    rewrite_weights(folder, tensors)
    with pytest.raises(
        CheckpointError, match=rf"missing {first}.*unexpected vae.surplus.*{second} has shape \[3, 3\]"
    ):
        LatentSkillAgent.load(folder)


def header_of(path: Path) -> tuple[int, dict]:
    data = path.read_bytes()
    length = int.from_bytes(data[:8], "little")
    return length, json.loads(data[8 : 8 + length])


def with_header(path: Path, header: dict) -> None:
    data = path.read_bytes()
    length = int.from_bytes(data[:8], "little")
    text = json.dumps(header).encode()
    text += b" " * max(0, length - len(text))  # keep the data where it was
    path.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + length :])


@pytest.mark.parametrize(
    "damage, message",
    [
        ("header longer than the file", "header of"),
        ("shape beyond its bytes", "does not fit its byte range"),
        ("overlapping tensors", "overlap or leave gaps"),
        ("unknown dtype", "malformed header entry"),
        ("truncated data", "tensors end at byte"),
        ("trailing data", "tensors end at byte"),
    ],
)
def test_a_damaged_safetensors_header_is_refused_before_any_data_is_read(tmp_path, damage, message):
    folder = write_checkpoint(
        tmp_path / "ck", {"agent_type": "LDCQ"}, {"a": torch.ones(4, 4), "b": torch.ones(16)}
    )
    path = folder / "model.safetensors"
    length, header = header_of(path)
    if damage == "header longer than the file":
        path.write_bytes((10**9).to_bytes(8, "little") + path.read_bytes()[8:])
    elif damage == "shape beyond its bytes":
        header["a"]["shape"] = [4000, 4000]
        with_header(path, header)
    elif damage == "overlapping tensors":
        header["b"]["data_offsets"] = header["a"]["data_offsets"]
        with_header(path, header)
    elif damage == "unknown dtype":
        header["a"]["dtype"] = "F128"
        with_header(path, header)
    elif damage == "truncated data":
        path.write_bytes(path.read_bytes()[:-4])
    else:
        path.write_bytes(path.read_bytes() + b"\0" * 4)
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(folder)


def test_a_config_asking_for_a_huge_model_is_refused_fast_with_little_memory(saved, tmp_path):
    """Each doctored config in a fresh process: its peak memory (ru_maxrss) beyond what importing and
    reading the checkpoint take stays under 1 GB (the budget: 2x the file + 64 MB), each in < 20 s."""
    cases = {
        "vae_hidden": 8000,  # ~6 GB before the fix
        "q_widths": [100_000, 100_000],
        "denoiser_widths": [4096, 100_000, 4096],
        "diffusion_timesteps": 10**10,
        "latent_dim": 100_000,
    }
    for field, value in cases.items():
        rewrite(
            copy_of(saved, tmp_path / field), lambda meta, f=field, v=value: meta["config"].update({f: v})
        )
    script = textwrap.dedent(
        f"""
        import json, resource, sys, time
        import torch
        torch.set_num_threads(1)
        from latent_skills import LatentSkillAgent
        from latent_skills.hub import CheckpointError
        LatentSkillAgent.load({str(saved)!r})  # warm: everything a load imports and builds once
        results = {{}}
        for field in {list(cases)!r}:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            start = time.perf_counter()
            try:
                LatentSkillAgent.load({str(tmp_path)!r} + "/" + field)
                error = None
            except CheckpointError as exc:
                error = str(exc)
            grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
            results[field] = (error, grew * 1024, time.perf_counter() - start)
        print(json.dumps(results))
        print(json.dumps(results), file=sys.stderr)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**_env(), "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for field, (error, grew, seconds) in results.items():
        assert error is not None, f"{field}: loaded"
        assert "config.json" in error, error
        assert grew < 1 << 30, f"{field}: peak memory grew by {grew / 2**20:.0f} MB"
        assert seconds < 20, f"{field}: {seconds:.1f} s"


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)
