"""Benchmarks of latent-skills: speed, memory and score targets, with committed results.

Run each one as a module from the repository root, e.g.::

    python -m benchmarks.quick_preset --maze umaze --seeds 0 1 2 3 4
    python -m benchmarks.summarize            # regenerate the tables in BENCHMARKS.md

Every result is written by :func:`benchmarks.record.write_result`, which stamps it with the command
line, the git commit, the dataset, the machine and the date. This package is not installed with the
library (the wheel holds ``latent_skills`` only).
"""
