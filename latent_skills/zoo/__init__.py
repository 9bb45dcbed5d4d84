"""The model zoo: the reference agents published on the Hugging Face Hub, listed in a manifest
(``hub/manifest.toml`` in a source checkout), and the one command that makes them::

    latent-skills zoo release hub/manifest.toml [--only NAME] [--endpoint URL] [--token T] [--runs DIR]
    latent-skills zoo readme hub/manifest.toml      # only regenerate hub/README.md

(``python -m latent_skills.zoo ...`` is the same command.)

``release`` trains each entry's recipe for each of its seeds (:mod:`latent_skills.runs`) (reusing the checkpoint already in
``--runs``, or resuming an interrupted one), evaluates it, pushes it with its model card, evaluation,
learning curve and replay video, records the results in ``results.json`` beside the manifest, and
regenerates ``README.md`` there: every agent with its score beside the paper's and a link, and which
entries are not yet published.

A manifest is TOML, one ``[[agent]]`` table per published agent::

    [[agent]]
    name = "ldcq-kitchen-mixed"          # unique; the README's row and the runs/ folder
    recipe = "ldcq-kitchen-mixed"        # a shipped recipe name, or a TOML file (relative to the manifest)
    repo_id = "latent-skills/ldcq-kitchen-mixed"   # with several seeds: one repo per seed, REPO-seedN
    seeds = [0]                          # [default: [0]]
    eval_episodes = 100                  # [default: the recipe's]
    paper_score = 62.3                   # the paper's normalised score, if it reports one
    paper = "Venkatraman et al. 2023, Table 1"         # where that number is from
    status = "planned"                   # "release" [default] or "planned": listed, not yet trained
    video_length = 1000                  # frames of replay.mp4 at most [default: 1000]

``release`` makes the ``release`` entries, or those ``--only`` names (planned ones included).
"""

from __future__ import annotations

from .manifest import (
    README_NAME,
    RESULTS_NAME,
    STATUSES,
    Manifest,
    ManifestError,
    ZooEntry,
    load_manifest,
    read_results,
)
from .readme import readme_text, write_readme
from .release import DEFAULT_ENDPOINT, SAVE_EVERY, release

__all__ = [
    "DEFAULT_ENDPOINT",
    "README_NAME",
    "RESULTS_NAME",
    "SAVE_EVERY",
    "STATUSES",
    "Manifest",
    "ManifestError",
    "ZooEntry",
    "load_manifest",
    "read_results",
    "readme_text",
    "release",
    "write_readme",
]
