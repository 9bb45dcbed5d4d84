"""``python -m latent_skills.zoo ...``: the same command as ``latent-skills zoo ...``."""

from latent_skills.cli.zoo import zoo

zoo(prog_name="python -m latent_skills.zoo")
