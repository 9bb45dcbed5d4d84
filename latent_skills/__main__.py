"""`python -m latent_skills ...` runs the `latent-skills` command (also under torchrun)."""

from latent_skills.cli import main

if __name__ == "__main__":
    main()
