"""The examples run as written: the CPU ones with --tiny, the GPU/network one only as far as --help."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch
from hub_server import FakeHub
from huggingface_hub import constants

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A loopback Hub (see hub_server.py) that the client talks to instead of huggingface.co."""
    server = FakeHub().start()
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr(constants, "ENDPOINT", server.endpoint)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", True)
    monkeypatch.setattr(
        constants, "AGENT_HARNESSES_PATH", str(tmp_path / "hf-home" / "harnesses"), raising=False
    )
    yield server
    server.stop()


def test_quickstart_collects_trains_evaluates_and_pushes(minari_root, tmp_path, hub, capsys):
    out = tmp_path / "ldcq"
    summary = load_example("quickstart").main(
        ["--tiny", "--out", str(out), "--push", "me/quickstart", "--token", "hf_test"]
    )
    assert (out / "model.safetensors").exists() and (minari_root / "latent-skills").exists()
    assert summary["normalized_score"] is not None and summary["success_rate"] is not None
    assert {"config.json", "model.safetensors", "README.md", "eval_results.json"} <= set(
        hub.files("me/quickstart")
    )
    assert "pushed to" in capsys.readouterr().out


def test_own_buffers_builds_a_dataset_and_trains_on_it(minari_root):
    summary = load_example("own_buffers").main(["--tiny"])
    assert (minari_root / "my-lab" / "pointmaze-pcontrol-v0").exists()
    assert summary["success_rate"] is not None and summary["mean_return"] >= 0


def test_skill_env_sac_trains_sac_over_skills(minari_root, tmp_path):
    summary = load_example("skill_env_sac").main(["--tiny", "--out", str(tmp_path / "sac")])
    assert (tmp_path / "sac.zip").exists()
    assert summary["skill_decisions_trained"] == 60 and summary["normalized_score"] is not None


def test_kitchen_example_explains_itself_and_refuses_without_a_gpu(capsys, monkeypatch):
    kitchen = load_example("kitchen_gpu")
    with pytest.raises(SystemExit) as exit_info:
        kitchen.main(["--help"])
    assert exit_info.value.code == 0
    assert "GPU" in capsys.readouterr().out
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exit_info:
        kitchen.main([])  # fails before any download
    assert exit_info.value.code == 2
    assert "no CUDA GPU" in capsys.readouterr().err
