"""latent-skills: temporally-abstract skills from offline RL datasets with latent diffusion priors."""

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
