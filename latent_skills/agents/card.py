"""The model card (``README.md``) pushed with every agent (:mod:`.sharing`): Hub metadata, how to load
it, how it was trained and evaluated.

The YAML header is built with huggingface_hub's ``ModelCardData`` and ``EvalResult`` (so the Hub
indexes the metrics in ``model-index``); the body is plain markdown.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from latent_skills.hub.mixin import LIBRARY_NAME

if TYPE_CHECKING:
    from huggingface_hub import ModelCard, ModelCardData

BASE_TAGS = ("reinforcement-learning", "offline-rl", "latent-diffusion", LIBRARY_NAME)
LICENSE = "mit"  # the library's license (pyproject.toml); the weights are published under it too
# The papers behind the agents: (title, arXiv id, what the library takes from it)
PAPERS = (
    (
        "Reasoning with Latent Diffusion in Offline Reinforcement Learning",
        "2309.06599",
        "LDCQ, LDGC, LDCP and BCQ-H",
    ),
    ("Efficient Planning with Latent Diffusion", "2310.00311", "LatentDiffuser"),
)

# What each agent is, in a sentence or two; other agent types fall back to their docstring.
DESCRIPTIONS = {
    "LDCQ": (
        "Latent Diffusion-Constrained Q-learning (LDCQ, *Reasoning with Latent Diffusion in Offline "
        "Reinforcement Learning*): a β-VAE learns H-step skills from the offline dataset, a latent "
        "diffusion model learns which skills the data supports in each state, and a clipped double "
        "Q-function over (state, skill) picks the best of the skills sampled from that prior. The chosen "
        "skill is decoded into low-level actions closed-loop until the agent replans."
    ),
}


def card_data(agent: Any, repo_id: str, eval_results: dict[str, Any] | None = None) -> ModelCardData:
    """The card's YAML metadata: library, tags, dataset and (with ``eval_results``) the model-index."""
    from huggingface_hub import EvalResult, ModelCardData

    kind = type(agent).__name__
    dataset_id, env_id = agent.spec.dataset_id, agent.spec.env_id
    tags = [*BASE_TAGS, kind, *(t for t in (dataset_id, env_id) if t)]
    results = None
    if eval_results is not None and (dataset_id or env_id):
        where = {
            "task_type": "reinforcement-learning",
            "task_name": "reinforcement-learning",
            "dataset_type": dataset_id or env_id,
            "dataset_name": dataset_id or env_id,
        }
        mean, std = eval_results["mean_return"], eval_results["std_return"]
        # every score names its evaluation protocol (metric_config, and in the name shown on the Hub);
        # results from before protocols existed followed the dataset's own env
        protocol = eval_results.get("protocol", "dataset")
        # "mean +/- std" is the convention of RL models on the Hub (huggingface_sb3, rl-baselines3-zoo).
        results = [
            EvalResult(
                **where,
                metric_type="mean_reward",
                metric_name=f"mean_reward ({protocol} protocol)",
                metric_config=protocol,
                metric_value=f"{mean:.2f} +/- {std:.2f}",
            )
        ]
        for key in ("normalized_score", "success_rate"):
            if eval_results.get(key) is not None:
                value = round(float(eval_results[key]), 4)
                results.append(
                    EvalResult(
                        **where,
                        metric_type=key,
                        metric_name=f"{key} ({protocol} protocol)",
                        metric_config=protocol,
                        metric_value=value,
                    )
                )
    return ModelCardData(
        library_name=LIBRARY_NAME,
        license=LICENSE,
        pipeline_tag="reinforcement-learning",
        tags=tags,
        datasets=[dataset_id] if dataset_id else None,
        model_name=repo_id.split("/")[-1],
        eval_results=results,
    )


def default_reproduce(agent: Any) -> str:
    """A ``latent-skills train`` command that trains ``agent``'s config on its dataset: the preset its
    config is closest to, and ``--set`` for every field that differs from it. (A recipe name says it
    shorter: pass ``reproduce=`` to the push where one was used.)"""
    from latent_skills.config import default_horizon

    config, dataset = agent.config, agent.spec.dataset_id
    ours = config.to_dict()
    best: tuple[int, str, list[str]] | None = None
    for preset in sorted(type(config).PRESETS):
        try:
            horizon = {"horizon": default_horizon(dataset)} if dataset else {}
            theirs = type(config).from_preset(preset, **horizon, seed=config.seed).to_dict()
        except Exception:  # a preset that does not validate at this H: not a candidate
            continue
        differ = [key for key in ours if key != "seed" and ours[key] != theirs.get(key)]
        if best is None or len(differ) < best[0]:
            best = (len(differ), preset, differ)
    words = ["latent-skills train", dataset or "DATASET", "--agent", type(agent).__name__]
    if best is not None:
        words += ["--preset", best[1], *(f"--set {key}={_cli_value(ours[key])}" for key in best[2])]
    words += ["--seed", str(config.seed)]
    if dataset and not dataset.startswith("latent-skills/"):  # the library makes its own datasets
        words.append("--download")
    return " ".join(words)


def _cli_value(value: Any) -> str:
    """A config value as ``--set`` parses it: lists as ``1,2,3``, None as ``none``."""
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def model_card(
    agent: Any,
    repo_id: str,
    eval_results: dict[str, Any] | None = None,
    *,
    learning_curve: str | None = None,
    library_version: str | None = None,
    video: str | None = None,
    reproduce: str | None = None,
    not_evaluated: str | None = None,
) -> ModelCard:
    """The whole card: metadata plus a body saying what the agent is, how to load and evaluate it, how
    to reproduce it, how it was trained and evaluated, and on which dataset.

    ``learning_curve`` names an image in the repo; ``video`` the URL of a replay video to show;
    ``reproduce`` is the command that trains it (default: :func:`default_reproduce`);
    ``not_evaluated`` says why there are no ``eval_results`` (shown in the card)."""
    from huggingface_hub import ModelCard

    data = card_data(agent, repo_id, eval_results)
    body = _body(
        agent,
        repo_id,
        eval_results,
        learning_curve,
        library_version,
        video=video,
        reproduce=reproduce or default_reproduce(agent),
        not_evaluated=not_evaluated,
    )
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def _body(
    agent: Any,
    repo_id: str,
    eval_results: dict[str, Any] | None,
    learning_curve: str | None,
    library_version: str | None,
    *,
    video: str | None,
    reproduce: str,
    not_evaluated: str | None,
) -> str:
    kind = type(agent).__name__
    config, spec = agent.config, agent.spec
    dataset_id = spec.dataset_id or "an offline dataset"
    description = DESCRIPTIONS.get(kind) or (type(agent).__doc__ or "").strip().split("\n\n")[0]
    lines = [
        f"# {kind} on {dataset_id}",
        "",
        f"An agent of type **{kind}** from the `{LIBRARY_NAME}` library, trained on the offline "
        f"dataset `{dataset_id}`. {description}",
        "",
    ]
    if video:
        lines += [
            "## Replay",
            "",
            f'<video controls autoplay loop muted src="{video}"></video>',
            "",
            f"One evaluation episode (`replay.mp4`, [download]({video})).",
            "",
        ]
    lines += [
        "## Usage",
        "",
        "```python",
        f"from latent_skills import {kind}",
        "",
        f'agent = {kind}.from_pretrained("{repo_id}")',
        "```",
        "",
        "It follows Stable-Baselines3's `predict` contract, on the dataset's evaluation env:",
        "",
        "```python",
        "env = agent.spec.make_env()",
        "obs, _ = env.reset(seed=0)",
        "action, state = agent.predict(obs, deterministic=True)",
        "```",
        "",
        "```bash",
        f"pip install {LIBRARY_NAME}",
        f"latent-skills evaluate {repo_id} --episodes 20 --envs 10",
        "```",
        "",
    ]
    lines += _evaluation_section(agent, eval_results, not_evaluated)
    lines += [
        "## Reproduce",
        "",
        "```bash",
        f"pip install {LIBRARY_NAME}",
        reproduce,
        "```",
        "",
    ]
    if learning_curve:
        lines += ["## Learning curve", "", f"![training losses]({learning_curve})", ""]
    steps = getattr(agent, "num_timesteps", 0)
    stages = ", ".join(getattr(agent, "stages_completed", [])) or "none"
    lines += [
        "## Training",
        "",
        f"Stages completed: {stages}; {steps} gradient steps in all"
        + (f"; `{LIBRARY_NAME}` {library_version}." if library_version else "."),
        f"Skill horizon H = {config.horizon}, latent size {config.latent_dim}, "
        + (
            f"diffusion steps T = {config.diffusion_timesteps}, "
            if hasattr(config, "diffusion_timesteps")
            else ""
        )
        + f"seed {config.seed}. The full config "
        "(also in `config.json`; every field can be set by name in `from_dataset` or "
        "`latent-skills train --set`):",
        "",
        "```json",
        json.dumps(config.to_dict(), indent=2),
        "```",
        "",
        "## Dataset",
        "",
        f"- Minari dataset: `{spec.dataset_id or 'not recorded'}`",
        f"- Evaluation env: `{spec.env_id or 'not recorded'}`",
    ]
    if spec.reference_scores is not None:
        low, high = spec.reference_scores
        lines.append(
            f"- Reference scores: min {low:.2f}, max {high:.2f}; "
            "normalised score = 100 · (return − min) / (max − min)"
        )
    else:
        lines.append("- Reference scores: none recorded (no normalised score)")
    extras = "".join(
        [
            ", `eval_results.json` (the evaluation, episode by episode)" if eval_results is not None else "",
            ", `learning_curve.png` (training losses)" if learning_curve else "",
            ", `replay.mp4` (an evaluation episode)" if video else "",
        ]
    )
    lines += [
        "",
        "## Files",
        "",
        "`config.json` (agent type, checkpoint format version, config, observation rule, action bounds, "
        "dataset and evaluation env), `model.safetensors` (every network's tensors and the "
        f"normalisation statistics){extras} and this card. Nothing is pickled.",
        "",
        "## Papers",
        "",
        *(
            f"- *{title}*, [arXiv:{arxiv}](https://arxiv.org/abs/{arxiv}) ({what})"
            for title, arxiv, what in PAPERS
        ),
        "",
        "## License",
        "",
        f"MIT, as the `{LIBRARY_NAME}` library. The dataset keeps its own license.",
        "",
    ]
    return "\n".join(lines)


def _acting_settings(config: Any) -> str:
    """The agent's acting fields (each variant has its own: candidates, plan depth, guidance, ...)."""
    return ", ".join(f"`{name}={getattr(config, name)}`" for name in config.ACTING)


PROTOCOL_TEXT = {
    "d4rl": "D4RL's evaluation env and score for this dataset's family, comparable with the papers' tables",
    "dataset": "the dataset's evaluation env as stored, scored with its reference scores",
}


def _evaluation_section(agent: Any, results: dict[str, Any] | None, not_evaluated: str | None) -> list[str]:
    config = agent.config
    if results is None:
        why = f" ({not_evaluated})" if not_evaluated else ""
        return [
            "## Evaluation",
            "",
            f"**This agent was not evaluated when pushed**{why}: no score is reported. "
            "The command above evaluates it. The agent acts with "
            f"{_acting_settings(config)}, replanning every {config.replan_every} steps.",
            "",
        ]
    score, success = results.get("normalized_score"), results.get("success_rate")
    env_id = agent.spec.env_id or "the given env"
    sampler = {**agent.policy.prior.sampler_record(), **results}
    solver = (
        f"{sampler['sampler']}, {sampler['sampler_steps']} steps"
        if "sampler" in sampler
        else f"{type(agent.policy.prior).__name__} (no solver)"
    )
    protocol = results.get("protocol", "dataset")
    rows = [
        ("protocol", f"`{protocol}` ({PROTOCOL_TEXT.get(protocol, protocol)})"),
        ("mean return", f"{results['mean_return']:.2f} ± {results['std_return']:.2f}"),
        ("normalised score (0–100)", "n/a" if score is None else f"{score:.1f}"),
        ("success rate", "n/a" if success is None else f"{success:.2f}"),
        ("episodes", str(results.get("n_episodes"))),
        ("env", f"`{env_id}`"),
        ("seed", str(results.get("seed"))),
        ("deterministic", str(results.get("deterministic"))),
        ("latent sampler", solver),
        ("acting settings", _acting_settings(config)),
        (
            "replanning interval",
            f"{results.get('exec_horizon', config.replan_every)} steps (H = {config.horizon})",
        ),
    ]
    return [
        "## Evaluation",
        "",
        "Measured when pushed (`eval_results.json` holds every episode's return):",
        "",
        "| | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows),
        "",
    ]
