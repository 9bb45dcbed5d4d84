"""The ``latent-skills`` group and its one error policy.

A user error (bad input the user can fix: a config value, a checkpoint, a dataset id, a missing extra,
a file in the way) prints one line, ``Error: ...``, naming the fix, and exits with status 2; never a
traceback. A command raises :class:`UserError` for what it checks itself; the errors the library raises
for bad input (:data:`USER_ERRORS`) become one wherever they come from. Anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import sys

import click

from latent_skills import __version__  # the package is loaded anyway (it is this module's parent)

# The library's errors that mean bad input, not a bug; named by module, not imported: the command
# imports only click and the standard library at the top, so that `--help` stays fast (heavy imports
# are inside the commands).
USER_ERRORS = (
    ("latent_skills.config", "ConfigError"),
    ("latent_skills.checkpoint.format", "CheckpointError"),
    ("latent_skills.data.loading", "DatasetNotFoundError"),
    ("latent_skills.agents.divergence", "TrainingDivergedError"),
    ("latent_skills.envs.safe_make", "UntrustedEnvSpecError"),
    ("latent_skills.envs.video", "VideoUnavailable"),
    ("latent_skills.loggers", "MissingExtraError"),
)


class UserError(click.ClickException):
    """A mistake the user can fix; the message says how. One line, exit status 2, no traceback."""

    exit_code = 2


def user_errors() -> tuple[type[Exception], ...]:
    """The classes of :data:`USER_ERRORS` whose modules are loaded (an error can only have been
    raised from a loaded module, so a bad command line is not made to import torch to be reported),
    and FileExistsError."""
    loaded = [getattr(sys.modules[module], name) for module, name in USER_ERRORS if module in sys.modules]
    return (*loaded, FileExistsError)


class Commands(click.Group):
    """Applies the error policy to every command under it (a group run alone, too)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except click.ClickException:
            raise
        except Exception as exc:
            if isinstance(exc, user_errors()):
                raise UserError(str(exc)) from exc
            raise


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="latent-skills")
def main() -> None:
    """Learn temporally-abstract skills from offline RL datasets and act with them."""
