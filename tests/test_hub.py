"""push_to_hub / from_pretrained / the model card / `latent-skills push`, against a loopback Hub
(tests/hub_server.py): no network. One tiny LDCQ is trained per module."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from agent_helpers import TINY
from click.testing import CliRunner
from conftest import copy_umaze
from hub_server import FakeHub
from huggingface_hub import ModelCard, constants
from huggingface_hub.utils import HfHubHTTPError
from stable_baselines3.common.logger import configure

from latent_skills import LDCQ, LatentSkillAgent, load_agent
from latent_skills.agents.card import model_card
from latent_skills.cli import main
from latent_skills.hub import (
    MIGRATIONS,
    CheckpointError,
    HubFiles,
    HubMixin,
    from_pretrained,
    push_to_hub,
    read_checkpoint,
    write_checkpoint,
    write_learning_curve,
)

TOKEN = "hf_test_token"
ALLOWED_SUFFIXES = {".json", ".safetensors", ".md", ".png"}


@pytest.fixture(scope="module")
def trained(umaze_source, tmp_path_factory):
    """A tiny LDCQ trained with a CSV logger (for the learning curve), its dataset in a temp store."""
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("minari")
        mp.setenv("MINARI_DATASETS_PATH", str(root))
        dataset = copy_umaze(umaze_source, root)
        agent = LDCQ.from_dataset(dataset, **TINY)
        agent.set_logger(configure(str(tmp_path_factory.mktemp("logs")), ["csv"]))
        agent.learn(log_interval=10)
    yield agent
    agent.logger.close()


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A fresh loopback Hub that wants TOKEN for writes; huggingface_hub pointed at it, with an empty
    cache and no token of the machine's own. ENDPOINT is read at import, so the constants are patched."""
    server = FakeHub(require_token=TOKEN).start()
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr(constants, "ENDPOINT", server.endpoint)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", True)
    monkeypatch.setattr(
        constants, "AGENT_HARNESSES_PATH", str(tmp_path / "hf-home" / "harnesses"), raising=False
    )
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    yield server
    server.stop()


def observations(agent, n: int = 4) -> dict[str, np.ndarray]:
    env = agent.spec.make_env()
    obs = [env.reset(seed=s)[0] for s in range(n)]
    env.close()
    return {k: np.stack([o[k] for o in obs]) for k in obs[0]}


def assert_same_agent(a, b) -> None:
    for prefix, module in a.modules().items():
        theirs = b.modules()[prefix].state_dict()
        for name, tensor in module.state_dict().items():
            assert torch.equal(tensor, theirs[name]), f"{prefix}.{name}"
    obs = observations(a)
    np.testing.assert_array_equal(
        a.predict(obs, deterministic=True)[0], b.predict(obs, deterministic=True)[0]
    )


def test_push_is_one_commit_of_safe_files_with_a_card(trained, hub):
    url = push_to_hub(trained, "me/ldcq-umaze", token=TOKEN, eval_episodes=2, eval_envs=2, video=False)
    repo = hub.repos["me/ldcq-umaze"]
    assert len(repo.commits) == 1 and url == f"{hub.endpoint}/me/ldcq-umaze/commit/{repo.main}"
    assert not repo.private
    files = hub.files("me/ldcq-umaze")
    assert set(files) == {
        "config.json",
        "model.safetensors",
        "README.md",
        "eval_results.json",
        "learning_curve.png",
    }
    # every write carried the token
    writes = [r for r in hub.requests if r[0] == "POST"]
    assert writes and all(auth == f"Bearer {TOKEN}" for _, _, auth in writes)

    # no pickle: only data formats, the weights parse as safetensors, the config as JSON
    assert all(Path(name).suffix in ALLOWED_SUFFIXES for name in files)
    assert all(not data.startswith(b"\x80") for data in files.values())  # pickle protocol 2+ opcode
    assert files["learning_curve.png"].startswith(b"\x89PNG")
    tensors = safetensors.torch.load(files["model.safetensors"])
    assert set(tensors) == {f"{p}.{n}" for p, m in trained.modules().items() for n in m.state_dict()}
    assert json.loads(files["config.json"])["agent_type"] == "LDCQ"
    results = json.loads(files["eval_results.json"])
    assert results["n_episodes"] == 2 and results["dataset_id"] == trained.spec.dataset_id

    # the card: Hub metadata with tags, dataset and model-index metrics; a body that says how to load it
    card = ModelCard(files["README.md"].decode())
    data = card.data
    assert data.library_name == "latent-skills" and data.pipeline_tag == "reinforcement-learning"
    assert data.license == "mit"
    assert {"reinforcement-learning", "offline-rl", "latent-diffusion", "LDCQ"} <= set(data.tags)
    assert {trained.spec.dataset_id, trained.spec.env_id} <= set(data.tags)
    assert data.datasets == [trained.spec.dataset_id]
    metrics = {r.metric_type: r for r in data.eval_results}
    assert set(metrics) == {"mean_reward", "normalized_score", "success_rate"}
    mean = metrics["mean_reward"]
    assert mean.metric_value == f"{results['mean_return']:.2f} +/- {results['std_return']:.2f}"
    assert mean.task_type == "reinforcement-learning" and mean.dataset_type == trained.spec.dataset_id
    assert metrics["normalized_score"].metric_value == pytest.approx(results["normalized_score"], abs=1e-4)
    protocol = results["protocol"]  # named beside every metric, and in the card's table
    assert all(
        r.metric_config == protocol and f"({protocol} protocol)" in r.metric_name for r in metrics.values()
    )
    assert f"| protocol | `{protocol}` (" in card.text
    assert "model-index" in files["README.md"].decode()
    for text in (
        "from latent_skills import LDCQ",
        'LDCQ.from_pretrained("me/ldcq-umaze")',
        "latent-skills evaluate me/ldcq-umaze",
        f'"horizon": {TINY["horizon"]}',
        "replanning interval",
        "![training losses](learning_curve.png)",
        "https://arxiv.org/abs/2309.06599",  # LDCQ's paper
        "https://arxiv.org/abs/2310.00311",  # LatentDiffuser's
        "## Reproduce",
        f"latent-skills train {trained.spec.dataset_id} --agent LDCQ --preset ",
        "## License",
    ):
        assert text in card.text, text
    assert "<video" not in card.text and "not evaluated" not in card.text


def test_from_pretrained_with_an_empty_cache_acts_identically(trained, hub, tmp_path):
    push_to_hub(trained, "me/ldcq", token=TOKEN, eval_episodes=0, video=False)
    assert "eval_results.json" not in hub.files("me/ldcq")
    agent = from_pretrained(LDCQ, "me/ldcq", device="cpu", cache_dir=tmp_path / "cache")
    assert isinstance(agent, LDCQ) and agent.stages_completed == ["skills", "prior", "q"]
    assert_same_agent(trained, agent)
    # what was downloaded: the two files the format names (the card and the PNG stay on the Hub)
    snapshots = list((tmp_path / "cache").glob("models--me--ldcq/snapshots/*"))
    assert len(snapshots) == 1
    assert {p.name for p in snapshots[0].iterdir()} == {"config.json", "model.safetensors"}
    # the base class dispatches, load_agent reads the downloaded folder, a commit id pins a revision
    sha = hub.repos["me/ldcq"].main
    assert type(from_pretrained(LatentSkillAgent, "me/ldcq", revision=sha, cache_dir=tmp_path / "c2")) is LDCQ
    assert_same_agent(trained, load_agent(str(snapshots[0])))


def test_loads_offline_from_the_cache(trained, hub, monkeypatch):
    push_to_hub(trained, "me/offline", token=TOKEN, eval_episodes=0, video=False)
    from_pretrained(LDCQ, "me/offline")  # fills the default cache (HF_HUB_CACHE)
    hub.stop()
    seen = len(hub.requests)
    assert_same_agent(trained, from_pretrained(LDCQ, "me/offline", local_files_only=True))
    assert_same_agent(trained, from_pretrained(LDCQ, "me/offline"))  # Hub unreachable: the cache answers
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # what HF_HUB_OFFLINE=1 sets at import
    assert_same_agent(trained, from_pretrained(LDCQ, "me/offline"))
    assert len(hub.requests) == seen
    with pytest.raises(CheckpointError, match="not in the Hugging Face cache"):
        from_pretrained(LDCQ, "me/never-downloaded")


def test_wrong_class_and_bad_names_are_clear_errors(trained, hub, tmp_path):
    class OtherAgent(LDCQ):
        pass

    push_to_hub(trained, "me/wrong", token=TOKEN, eval_episodes=0, video=False)
    with pytest.raises(CheckpointError, match=r"holds a LDCQ agent, not a OtherAgent.*LDCQ\.from_pretrained"):
        from_pretrained(OtherAgent, "me/wrong")
    with pytest.raises(CheckpointError, match=r"holds a LDCQ agent, not a OtherAgent.*LDCQ\.load"):
        from_pretrained(OtherAgent, trained.save(tmp_path / "local"))
    with pytest.raises(CheckpointError, match="no model repo 'me/missing'"):
        from_pretrained(LDCQ, "me/missing")
    with pytest.raises(CheckpointError, match="no such revision"):
        from_pretrained(LDCQ, "me/wrong", revision="v9")
    with pytest.raises(CheckpointError, match="neither a checkpoint folder nor a Hub repo id"):
        from_pretrained(LDCQ, "runs/not/here")
    with pytest.raises(CheckpointError, match="is a file"):
        from_pretrained(LDCQ, tmp_path / "local" / "config.json")


def test_a_second_push_replaces_stale_results(trained, hub):
    push_to_hub(trained, "me/twice", token=TOKEN, eval_episodes=1, eval_envs=1, video=False)
    assert "eval_results.json" in hub.files("me/twice")
    push_to_hub(
        trained,
        "twice",
        token=TOKEN,
        commit_message="weights only",
        progress_csv="/nonexistent.csv",
        eval_episodes=0,
        video=False,
    )
    repo = hub.repos["test-user/twice"]  # a bare name lands in the user's namespace
    assert len(repo.commits) == 1 and repo.messages[repo.main] == "weights only"
    push_to_hub(
        trained, "me/twice", token=TOKEN, progress_csv="/nonexistent.csv", eval_episodes=0, video=False
    )
    files = hub.files("me/twice")
    assert len(hub.repos["me/twice"].commits) == 2
    assert set(files) == {"config.json", "model.safetensors", "README.md"}  # stale results deleted
    assert "This agent was not evaluated when pushed** (eval_episodes=0)" in files["README.md"].decode()
    with pytest.raises(HfHubHTTPError, match="401") as refused:
        push_to_hub(trained, "me/twice", token="hf_wrong", eval_episodes=0, video=False)
    assert "hf auth login" in str(refused.value) and "--token" in str(refused.value)


def test_cli_push_then_evaluate_a_hub_id(trained, hub, tmp_path):
    checkpoint = trained.save(tmp_path / "run")
    (checkpoint / "logs").mkdir()
    shutil.copy(trained.logger.output_formats[0].file.name, checkpoint / "logs" / "progress.csv")
    runner = CliRunner()
    push = ["push", str(checkpoint), "me/cli", "--no-video", "--eval-episodes", "1", "--eval-envs", "1"]
    result = runner.invoke(
        main, [*push, "--private", "--token", TOKEN, "--reproduce", "latent-skills train X"]
    )
    assert result.exit_code == 0, result.output
    assert f"{hub.endpoint}/me/cli/commit/" in result.output
    assert hub.repos["me/cli"].private
    files = hub.files("me/cli")
    assert {"learning_curve.png", "eval_results.json"} <= set(files) and "replay.mp4" not in files
    assert "latent-skills train X" in files["README.md"].decode()
    # --revision pushes to a branch, --create-pr opens a pull request: main stays as it was
    main_head = hub.repos["me/cli"].main
    result = runner.invoke(main, [*push, "--token", TOKEN, "--revision", "v1", "--eval-episodes", "0"])
    assert result.exit_code == 0, result.output
    assert "eval_results.json" not in hub.files("me/cli", "v1") and hub.repos["me/cli"].main == main_head
    result = runner.invoke(
        main, [*push, "--token", TOKEN, "--create-pr", "--message", "proposal", "--json", "-"]
    )
    assert result.exit_code == 0, result.output
    assert f"pull request: {hub.endpoint}/me/cli/discussions/1" in result.stderr  # stdout: the JSON alone
    pushed = json.loads(result.stdout)
    assert pushed["repo_id"] == "me/cli" and pushed["pr_url"] == f"{hub.endpoint}/me/cli/discussions/1"
    assert hub.repos["me/cli"].main == main_head and "refs/pr/1" in hub.repos["me/cli"].refs

    args = ["evaluate", "me/cli", "--episodes", "1", "--envs", "1"]
    result = runner.invoke(main, args)  # private: without the token the repo is not visible
    assert result.exit_code == 2 and "no model repo 'me/cli'" in result.output
    result = runner.invoke(main, [*args, "--token", TOKEN])
    assert result.exit_code == 0, result.output
    assert "normalized score" in result.output
    result = runner.invoke(main, ["evaluate", "no/such/thing"])
    assert result.exit_code == 2 and "neither a checkpoint folder" in result.output
    started = time.perf_counter()
    result = runner.invoke(main, ["push", str(checkpoint), "me/cli", "--token", "hf_wrong"])
    assert result.exit_code == 2 and "push to me/cli failed" in result.output
    assert time.perf_counter() - started < 5  # refused before any evaluation or video


def test_card_without_evaluation_and_curve_without_matplotlib(trained, tmp_path, monkeypatch):
    card = model_card(trained, "me/plain")
    assert card.data.eval_results is None and "model-index" not in card.content
    assert "not evaluated when pushed" in card.text and "learning_curve" not in card.text
    csv = trained.logger.output_formats[0].file.name
    assert write_learning_curve(csv, tmp_path / "curve.png")
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # as if matplotlib were not installed
    assert not write_learning_curve(csv, tmp_path / "none.png") and not (tmp_path / "none.png").exists()


def test_older_checkpoint_formats_migrate_and_unknown_ones_are_refused(trained, tmp_path, monkeypatch):
    folder = trained.save(tmp_path / "old")
    meta = json.loads((folder / "config.json").read_text())
    meta["format_version"] = 0
    del meta["config_sha256"]  # formats before 6 had none
    meta["settings"] = meta.pop("config")  # pretend format 0 called it "settings"
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"format 0.*migrates from \[1, 2, 3, 4, 5, 6\]"):
        LDCQ.load(folder)

    def zero_to_one(meta, tensors):
        meta["config"] = meta.pop("settings")
        return meta, tensors

    monkeypatch.setitem(MIGRATIONS, 0, zero_to_one)
    assert_same_agent(trained, LDCQ.load(folder))
    meta["format_version"] = 8
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="newer"):
        LDCQ.load(folder)


def test_a_format_2_checkpoint_keeps_the_ddpm_variance_it_was_used_with(trained, tmp_path):
    folder = trained.save(tmp_path / "v2")
    meta = json.loads((folder / "config.json").read_text())
    meta["format_version"] = 2
    del meta["config_sha256"]
    del meta["config"]["ddpm_variance"]
    (folder / "config.json").write_text(json.dumps(meta))
    assert trained.config.ddpm_variance == "beta"  # new agents: the paper's Algorithm 1
    assert LDCQ.load(folder).config.ddpm_variance == "posterior"  # what format 2 sampled with


def test_a_format_3_checkpoint_keeps_its_per_beta_rule_and_bootstrapped_success_cuts(trained, tmp_path):
    folder = trained.save(tmp_path / "v3")
    meta = json.loads((folder / "config.json").read_text())
    meta["format_version"] = 3
    del meta["config_sha256"]
    del meta["config"]["per_beta_schedule"], meta["config"]["success_cut"]
    (folder / "config.json").write_text(json.dumps(meta))
    assert trained.config.per_beta_schedule == "stage"
    loaded = LDCQ.load(folder).config
    assert (loaded.per_beta_schedule, loaded.success_cut) == ("steps", "bootstrap")


FRESH_PROCESS = """
import json, sys
from latent_skills import LDCQ
agent = LDCQ.from_pretrained("me/ldcq")
obs = {k: __import__("numpy").array(v) for k, v in json.loads(sys.argv[1]).items()}
action, _ = agent.predict(obs, deterministic=True)
print(json.dumps([float(a).hex() for a in action]))
"""


def test_a_fresh_process_with_a_fresh_cache_acts_identically(trained, hub, tmp_path):
    import os
    import subprocess

    push_to_hub(trained, "me/ldcq", token=TOKEN, eval_episodes=0, video=False)
    obs, _ = trained.spec.make_env().reset(seed=3)
    env = {
        **os.environ,
        "HF_ENDPOINT": hub.endpoint,
        "HF_HOME": str(tmp_path / "fresh-home"),
        "HF_TOKEN": TOKEN,
    }
    env.pop("HF_HUB_CACHE", None)
    payload = json.dumps({k: v.tolist() for k, v in obs.items()})
    out = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, payload], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    expected, _ = trained.predict(obs, deterministic=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [float(a).hex() for a in expected]
    assert any((tmp_path / "fresh-home").rglob("model.safetensors"))


@pytest.fixture(scope="module")
def renders(trained, tmp_path_factory):
    """None where the agent's env renders a video here, else why not (the video tests skip with it)."""
    from latent_skills.envs.video import VideoUnavailable, record_video

    try:
        record_video(trained, tmp_path_factory.mktemp("probe") / "probe.mp4", video_length=1)
    except VideoUnavailable as exc:
        return str(exc)
    return None


def test_push_evaluates_by_default_and_shows_a_replay(trained, hub, renders, recwarn):
    info = push_to_hub(trained, "me/default", token=TOKEN, video_length=5)
    files = hub.files("me/default")
    assert json.loads(files["eval_results.json"])["n_episodes"] == 10  # as huggingface_sb3's default
    card = files["README.md"].decode()
    if renders is not None:  # the push goes on without the video and says why
        assert "replay.mp4" not in files and "<video" not in card
        assert any("pushing without replay.mp4" in str(w.message) for w in recwarn)
        pytest.skip(f"no rendering here: {renders}")
    assert files["replay.mp4"][4:8] == b"ftyp"  # an MP4
    url = f"{hub.endpoint}/me/default/resolve/main/replay.mp4"
    assert f'<video controls autoplay loop muted src="{url}"></video>' in card
    assert info == f"{hub.endpoint}/me/default/commit/{hub.repos['me/default'].main}"
    # the video stays on the Hub: from_pretrained downloads no MP4
    snapshot = Path(constants.HF_HUB_CACHE)
    from_pretrained(LDCQ, "me/default")
    assert not list(snapshot.rglob("*.mp4"))
    # a push without evaluation or video deletes the old ones
    push_to_hub(trained, "me/default", token=TOKEN, eval_episodes=0, video=False)
    assert not {"replay.mp4", "eval_results.json"} & set(hub.files("me/default"))


def test_an_agent_without_an_eval_env_is_pushed_unevaluated(trained, hub, tmp_path):
    from dataclasses import replace

    agent = LDCQ.load(trained.save(tmp_path / "copy"))
    agent.spec = replace(agent.spec, eval_env_spec=None)
    push_to_hub(agent, "me/no-env", token=TOKEN, progress_csv="/nonexistent.csv")
    files = hub.files("me/no-env")
    assert set(files) == {"config.json", "model.safetensors", "README.md"}
    assert (
        "not evaluated when pushed** (no evaluation env is recorded with it)" in files["README.md"].decode()
    )


def test_revision_pull_request_and_force_download(trained, hub, tmp_path):
    push_to_hub(trained, "me/rev", token=TOKEN, eval_episodes=0, video=False)
    main_head = hub.repos["me/rev"].main
    push_to_hub(trained, "me/rev", token=TOKEN, eval_episodes=1, eval_envs=1, video=False, revision="v1")
    repo = hub.repos["me/rev"]
    assert repo.main == main_head and "eval_results.json" in hub.files("me/rev", "v1")
    assert_same_agent(trained, from_pretrained(LDCQ, "me/rev", revision="v1", cache_dir=tmp_path / "c"))

    info = push_to_hub(  # it must change something: the Hub skips a commit that changes nothing
        trained,
        "me/rev",
        token=TOKEN,
        eval_episodes=2,
        video=False,
        create_pr=True,
        commit_message="proposal",
    )
    assert info.pr_url == f"{hub.endpoint}/me/rev/discussions/1" and info.pr_revision == "refs/pr/1"
    assert repo.main == main_head and repo.messages[repo.refs["refs/pr/1"]] == "proposal"
    assert_same_agent(
        trained, from_pretrained(LDCQ, "me/rev", revision="refs/pr/1", cache_dir=tmp_path / "c")
    )

    def downloads() -> int:
        return sum(m == "GET" and p.endswith("/model.safetensors") for m, p, _ in hub.requests)

    from_pretrained(LDCQ, "me/rev", cache_dir=tmp_path / "c")
    before = downloads()
    from_pretrained(LDCQ, "me/rev", cache_dir=tmp_path / "c")
    assert downloads() == before  # cached
    from_pretrained(LDCQ, "me/rev", cache_dir=tmp_path / "c", force_download=True)
    assert downloads() == before + 1


def test_the_default_reproduce_command_rebuilds_the_config(trained):
    import shlex

    from latent_skills.agents.card import default_reproduce

    words = shlex.split(default_reproduce(trained))
    assert words[:5] == ["latent-skills", "train", trained.spec.dataset_id, "--agent", "LDCQ"]
    preset = words[words.index("--preset") + 1]
    settings = dict(words[i + 1].split("=", 1) for i, w in enumerate(words) if w == "--set")
    seed = int(words[words.index("--seed") + 1])
    rebuilt = type(trained.config).from_preset(preset, **settings, seed=seed)
    assert rebuilt == trained.config


def test_a_format_4_checkpoint_learned_its_skills_from_every_window(trained, tmp_path):
    folder = trained.save(tmp_path / "v4")
    meta = json.loads((folder / "config.json").read_text())
    meta["format_version"] = 4
    del meta["config_sha256"]
    del meta["config"]["skill_windows"]
    (folder / "config.json").write_text(json.dumps(meta))
    assert LDCQ.load(folder).config.skill_windows == "all"


class Weights(HubMixin):
    """Not an agent: a vector saved in the checkpoint format, shared with the Hub mixin alone."""

    def __init__(self, vector: torch.Tensor) -> None:
        self.vector = vector

    def save(self, path):
        return write_checkpoint(path, {"agent_type": "Weights"}, {"vector": self.vector})

    @classmethod
    def load(cls, path, device="auto"):
        return cls(read_checkpoint(path)[1]["vector"])

    def _hub_files(self, folder, target):
        (folder / "NOTE.md").write_text(f"pushed to {target.repo_id} on {target.branch}\n")
        return HubFiles(["NOTE.md"], "Upload weights")


def test_the_hub_mixin_shares_any_class_that_saves_the_format(hub, tmp_path):
    original = Weights(torch.arange(4.0))
    original.push_to_hub("me/weights", token=TOKEN)
    assert set(hub.files("me/weights")) == {"config.json", "model.safetensors", "NOTE.md"}
    loaded = Weights.from_pretrained("me/weights", cache_dir=tmp_path / "cache")
    assert torch.equal(loaded.vector, original.vector)
    assert torch.equal(from_pretrained(Weights, original.save(tmp_path / "local")).vector, original.vector)
