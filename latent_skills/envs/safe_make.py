"""Build evaluation envs from data (checkpoints, Minari datasets) without trusting the data.

A checkpoint or a dataset is data that people download. It names its evaluation env, and the only thing
this module does with that name is look it up in gymnasium's registry: the env is built from the
*registered* spec of that id, with the stored keyword arguments (plain JSON values) and time limit.
Nothing that the data names is imported or called. A stored spec that names code (an ``entry_point``,
wrappers, a vector entry point, the old API-compatibility shim) is accepted only where that code is
what the registry already has for the id; an id that is not registered is refused. Both refusals are
an :class:`UntrustedEnvSpecError` that says how to fix it: register the env in this process, or pass
the env yourself (``agent.evaluate(env=gym.make(...))``). What is stored (``EnvRecord.to_json``):
``{"id", "kwargs", "max_episode_steps"}``. Older checkpoints hold a whole ``EnvSpec.to_json()``; they
still load, and their code-naming fields are checked against the registry before anything is built.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec

from latent_skills.envs.robotics import register_robotics_envs

# The fields of a stored EnvSpec that name code: they must match the registered spec of the id.
CODE_FIELDS = ("entry_point", "vector_entry_point", "additional_wrappers", "apply_api_compatibility")
# Fields of a stored EnvSpec (any gymnasium version) that name no code; the registry's values are used.
_NO_CODE = (
    "reward_threshold nondeterministic order_enforce disable_env_checker autoreset namespace name version"
)
BENIGN_FIELDS = tuple(_NO_CODE.split())
RECORD_FIELDS = ("id", "kwargs", "max_episode_steps")
# gym.make's own keywords: a stored kwargs dict may not hold them.
_MAKE_KEYWORDS = ("max_episode_steps", "disable_env_checker")
# Registered ids whose kwargs name another env to make (shimmy's old-gym compatibility envs, whose
# env_id may be "module:id", imported by old gym): never built from stored data.
_BY_NAME_IDS = frozenset({"GymV21Environment-v0", "GymV26Environment-v0"})


# Bounds on a stored env's settings, so that evaluating a checkpoint or a dataset always ends: a time
# limit of 1 to MAX_EPISODE_STEPS steps (D4RL's longest is 1,000), mazes of at most MAX_MAZE_CELLS
# cells (D4RL's largest has 108; 100 x 100 builds in about a second), kwargs of at most
# MAX_KWARGS_BYTES as JSON, and no render mode that opens a window ("human" aborts without a display).
MAX_EPISODE_STEPS = 100_000
MAX_MAZE_CELLS = 10_000
MAX_KWARGS_BYTES = 256 << 10
SAFE_RENDER_MODES = (None, "rgb_array", "rgb_array_list", "depth_array", "depth_array_list", "ansi")


class UntrustedEnvSpecError(ValueError):
    """A stored evaluation env that this process will not build: its id is not registered, or it names code."""


def settings_problem(kwargs: Mapping[str, Any], steps: Any) -> str | None:
    """Why an env with these (JSON) kwargs and time limit could make an evaluation hang or abort, or
    None: see MAX_EPISODE_STEPS, MAX_MAZE_CELLS, MAX_KWARGS_BYTES, SAFE_RENDER_MODES."""
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int)):
        return f"max_episode_steps={steps!r} is not an integer"
    if steps is not None and not 1 <= steps <= MAX_EPISODE_STEPS:
        return f"max_episode_steps={steps} is not within 1..{MAX_EPISODE_STEPS:,} (an evaluation must end)"
    mode = kwargs.get("render_mode")
    if mode not in SAFE_RENDER_MODES:
        return (
            f"render_mode={mode!r} is not one of {list(SAFE_RENDER_MODES)} (evaluation never renders; "
            "'human' opens a window on every step and aborts the process where there is no display)"
        )
    maze = kwargs.get("maze_map")
    if isinstance(maze, list):
        cells = sum(len(row) if isinstance(row, list) else 1 for row in maze)
        if cells > MAX_MAZE_CELLS:
            return f"maze_map has {cells:,} cells, over {MAX_MAZE_CELLS:,} (building it would take minutes)"
    try:
        size = len(json.dumps(kwargs))
    except (TypeError, ValueError, RecursionError):
        return None  # not JSON: reported where kwargs are checked as JSON
    if size > MAX_KWARGS_BYTES:
        return f"its kwargs are {size:,} bytes as JSON, over {MAX_KWARGS_BYTES:,}"
    return None


def _integer_steps(steps: Any, what: str) -> int | None:
    """A recorded time limit as an int (a dataset's spec may hold 1e30 as a float, which a checkpoint
    could then never load); a non-integral one is refused now, before anything is trained with it."""
    if isinstance(steps, float):
        if not steps.is_integer():
            raise UntrustedEnvSpecError(
                f"{what} has max_episode_steps={steps!r}, not an integer: pass env=gym.make(..., "
                "max_episode_steps=N) to record one."
            )
        return int(steps)
    return steps


def _how_to_fix(env_id: Any) -> str:
    return (
        "  Fix it one of these ways:\n"
        f"  - register {env_id!r} in this process before loading (import the package that registers it, "
        f"or gym.register({env_id!r}, entry_point=...));\n"
        "  - pass the env yourself: agent.evaluate(env=gym.make(...)) (an env you built is trusted, a "
        "stored one is not)."
    )


# ---------------------------------------------------------------------------------------- JSON values
def _json_problem(value: Any, path: str) -> str | None:
    """Where ``value`` (from stored data) is not plain JSON (dict with str keys, list, str, int,
    float, bool, None), or None."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return None
    if isinstance(value, list):
        for i, item in enumerate(value):
            problem = _json_problem(item, f"{path}[{i}]")
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path} has a non-string key {key!r}"
            problem = _json_problem(item, f"{path}[{key!r}]")
            if problem:
                return problem
        return None
    return f"{path} is a {type(value).__name__}"


def _to_json_value(value: Any, path: str) -> Any:
    """``value`` (from an env someone built) as plain JSON: tuples become lists, numpy scalars and
    arrays their Python values. Raises ValueError naming ``path`` where that is impossible."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, (int, float)):
        return float(value) if isinstance(value, float) else int(value)
    if isinstance(value, np.generic) and isinstance(value.item(), (bool, int, float, str)):
        return value.item()
    if isinstance(value, np.ndarray):
        return _to_json_value(value.tolist(), path)
    if isinstance(value, (list, tuple)):
        return [_to_json_value(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path} has a non-string key {key!r}")
            out[key] = _to_json_value(item, f"{path}[{key!r}]")
        return out
    raise ValueError(f"{path} is a {type(value).__name__} ({value!r:.80}), not a JSON value")


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return (
            bool(np.all(a == b)) if isinstance(a, np.ndarray) or isinstance(b, np.ndarray) else bool(a == b)
        )
    except Exception:  # objects whose == fails or is ambiguous
        return False


def _same_json(a: Any, b: Any) -> bool:
    """Equal as JSON (a tuple equals the list it serialises to); non-JSON values by ``==``."""
    try:
        return _to_json_value(a, "") == _to_json_value(b, "")
    except ValueError:
        return _same(a, b)


# ---------------------------------------------------------------------------------------- code fields
def _callable_name(value: Any) -> Any:
    """An entry point as the ``module:qualname`` string gymnasium writes for it."""
    if value is None or isinstance(value, str):
        return value
    module, name = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    return f"{module}:{name}" if module and name else repr(value)


def _wrappers(value: Any) -> list[tuple[Any, Any, Any]]:
    """Wrapper specs (``WrapperSpec`` objects or their JSON dicts) as comparable tuples."""
    out = []
    for w in value or ():
        if isinstance(w, Mapping):
            name, entry, kwargs = w.get("name"), w.get("entry_point"), w.get("kwargs")
        else:
            name, entry, kwargs = w.name, w.entry_point, w.kwargs
        try:
            kwargs = _to_json_value(kwargs, "")
        except ValueError:
            kwargs = repr(kwargs)
        out.append((name, _callable_name(entry), kwargs))
    return out


def _registered_code(spec: EnvSpec) -> dict[str, Any]:
    return {
        "entry_point": _callable_name(spec.entry_point),
        "vector_entry_point": _callable_name(getattr(spec, "vector_entry_point", None)),
        "additional_wrappers": _wrappers(spec.additional_wrappers),
        "apply_api_compatibility": bool(getattr(spec, "apply_api_compatibility", False)),
    }


def _claimed_code(claims: Mapping[str, Any]) -> dict[str, Any]:
    """The code-naming fields a stored spec claims, normalised like :func:`_registered_code`."""
    out: dict[str, Any] = {}
    for key, value in claims.items():
        if key == "additional_wrappers":
            out[key] = _wrappers(value)
        elif key == "apply_api_compatibility":
            out[key] = bool(value) if value is None or isinstance(value, bool) else value
        else:
            out[key] = _callable_name(value)
    return out


def _code_differences(claims: Mapping[str, Any], registered: EnvSpec) -> list[str]:
    ours, theirs = _claimed_code(claims), _registered_code(registered)
    return [
        f"{key}={ours[key]!r} (registered: {theirs[key]!r})"
        for key in CODE_FIELDS
        if key in ours and ours[key] != theirs[key]
    ]


# ---------------------------------------------------------------------------------------- the record
@dataclass(frozen=True, eq=False)
class EnvRecord:
    """An evaluation env as data: a registered id, JSON kwargs and a time limit. ``claims`` holds
    the code-naming fields of an old-style stored ``EnvSpec`` (checked, never used)."""

    id: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    max_episode_steps: int | None = None
    claims: dict[str, Any] = field(default_factory=dict)

    # ---------------------------------------------------------------- reading stored data
    @classmethod
    def from_stored(cls, stored: str | Mapping[str, Any], source: str = "the checkpoint") -> EnvRecord:
        """Parse a stored record (``to_json``'s form, or a whole ``EnvSpec.to_json()``) without
        importing or building anything. Malformed data is an :class:`UntrustedEnvSpecError`."""
        if isinstance(stored, str):
            try:
                data = json.loads(stored)
            except json.JSONDecodeError as exc:
                raise UntrustedEnvSpecError(f"{source}'s evaluation env is not valid JSON ({exc}).") from exc
        else:
            data = stored
        if not isinstance(data, Mapping):
            raise UntrustedEnvSpecError(
                f"{source}'s evaluation env is a {type(data).__name__}, not an object."
            )
        unknown = sorted(set(data) - set(RECORD_FIELDS) - set(CODE_FIELDS) - set(BENIGN_FIELDS))
        if unknown:
            raise UntrustedEnvSpecError(
                f"{source}'s evaluation env has fields this version does not know: {unknown} "
                f"(a stored env is {list(RECORD_FIELDS)}, or a gymnasium EnvSpec)."
            )
        env_id, steps = data.get("id"), data.get("max_episode_steps")
        kwargs = {} if data.get("kwargs") is None else data["kwargs"]
        if not isinstance(env_id, str) or not env_id:
            raise UntrustedEnvSpecError(f"{source}'s evaluation env has no id (got {env_id!r}).")
        if not isinstance(kwargs, dict):
            raise UntrustedEnvSpecError(f"{source}'s evaluation env kwargs are a {type(kwargs).__name__}.")
        problem = _json_problem(kwargs, "kwargs")
        if problem:
            raise UntrustedEnvSpecError(f"{source}'s evaluation env {env_id!r}: {problem}, not plain JSON.")
        clash = sorted(set(kwargs) & set(_MAKE_KEYWORDS))
        if clash:
            raise UntrustedEnvSpecError(f"{source}'s evaluation env {env_id!r} has kwargs {clash}.")
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int)):
            raise UntrustedEnvSpecError(
                f"{source}'s evaluation env {env_id!r} has max_episode_steps={steps!r}, not an integer."
            )
        claims = {key: data[key] for key in CODE_FIELDS if key in data}
        return cls(env_id, dict(kwargs), steps, claims)

    # ---------------------------------------------------------------- recording a spec
    @classmethod
    def from_spec(cls, spec: EnvSpec, *, trusted: bool, source: str = "the env") -> EnvRecord:
        """What to store for ``spec``: its id, kwargs (as JSON) and time limit.

        ``trusted`` is for an env the caller built (``env=``): code-naming fields that differ from
        the registered spec of its id (e.g. wrappers added after ``gym.make``) cannot be stored and
        are dropped with a warning. An untrusted spec (a downloaded dataset's) that names other
        code than the registry is refused with :class:`UntrustedEnvSpecError`.

        Only JSON kwargs are recorded (tuples become lists). A kwarg that is not JSON is left to the
        registry where the id's registration has that kwarg (with a warning unless it provably equals
        the registered value); any other is a ValueError naming it.
        """
        register_robotics_envs()
        registered = gym.registry.get(spec.id)
        if registered is not None:
            claims = {
                "entry_point": spec.entry_point,
                "vector_entry_point": getattr(spec, "vector_entry_point", None),
                "additional_wrappers": spec.additional_wrappers,
            }
            differences = _code_differences(claims, registered)
            if differences and not trusted:
                raise UntrustedEnvSpecError(
                    f"{source} names evaluation env {spec.id!r} with {'; '.join(differences)}: "
                    "envs are built from the registry only, so what data names is never imported or "
                    f"called.\n  Pass env= (e.g. env={spec.id!r} or env=gym.make({spec.id!r}, ...)) to "
                    "record the registered env instead."
                )
            if differences:
                warnings.warn(
                    f"{source}: evaluation env {spec.id!r} differs from its registered spec "
                    f"({'; '.join(differences)}); only its id, kwargs and time limit are recorded, so a "
                    "loaded agent evaluates the registered env. Pass env= to evaluate() for yours.",
                    stacklevel=3,
                )
        kwargs: dict[str, Any] = {}
        for key, value in spec.kwargs.items():
            try:
                kwargs[key] = _to_json_value(value, f"kwarg {key!r}")
            except ValueError as exc:
                if registered is None or key not in registered.kwargs:
                    raise ValueError(
                        f"{source}: evaluation env {spec.id!r} cannot be recorded: {exc}. A checkpoint "
                        "stores an env as a registered id with JSON kwargs: put the object in the "
                        f"registration (gym.register({spec.id!r}, entry_point=..., kwargs={{{key!r}: ...}})), "
                        "or record the env without it and pass yours to evaluate(env=...)."
                    ) from exc
                if not _same(value, registered.kwargs[key]):  # gym.make deep-copies: often not provable
                    warnings.warn(
                        f"{source}: kwarg {key!r} of evaluation env {spec.id!r} is not JSON, so it is not "
                        "recorded: a loaded agent's env gets the registered value. Pass your env to "
                        "evaluate(env=...) where that differs.",
                        stacklevel=3,
                    )
        return cls(
            spec.id, kwargs, _integer_steps(spec.max_episode_steps, f"{source}: evaluation env {spec.id!r}")
        )

    # ---------------------------------------------------------------- writing
    def to_dict(self) -> dict[str, Any]:
        """The stored form; an old-style record keeps its claims, so it stays checked when re-saved."""
        out: dict[str, Any] = {
            "id": self.id,
            "kwargs": self.kwargs,
            "max_episode_steps": self.max_episode_steps,
        }
        out.update(self.claims)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    # ---------------------------------------------------------------- building
    def registered_spec(self, source: str = "the checkpoint") -> EnvSpec:
        """The registry's spec for this id, after checking the stored claims against it."""
        register_robotics_envs()
        registered = gym.registry.get(self.id)  # an exact lookup: never gym.make's "module:id" import
        if registered is None:
            raise UntrustedEnvSpecError(
                f"{source}'s evaluation env {self.id!r} is not registered in this process, and envs "
                "are built from registered ids only (loading never imports what a checkpoint names).\n"
                + _how_to_fix(self.id)
            )
        if self.id in _BY_NAME_IDS:
            raise UntrustedEnvSpecError(
                f"{source}'s evaluation env {self.id!r} makes whatever env its kwargs name, so it is "
                "never built from stored data.\n" + _how_to_fix(self.id)
            )
        differences = _code_differences(self.claims, registered)
        if differences:
            raise UntrustedEnvSpecError(
                f"{source}'s evaluation env {self.id!r} names other code than the registered "
                f"{self.id!r}: {'; '.join(differences)}. Loading never imports or calls "
                "what a checkpoint names.\n" + _how_to_fix(self.id)
            )
        self._check_settings(source, self.kwargs, self.max_episode_steps)
        return registered

    def _check_settings(self, source: str, kwargs: Mapping[str, Any], steps: Any) -> None:
        problem = settings_problem(kwargs, steps)
        if problem:
            raise UntrustedEnvSpecError(
                f"{source}'s evaluation env {self.id!r} is not built: {problem}. Pass the env "
                f"yourself: agent.evaluate(env=gym.make({self.id!r}, max_episode_steps=...))."
            )

    def make(self, source: str = "the checkpoint", **overrides: Any) -> gym.Env:
        """``gym.make`` of the registered spec with the stored kwargs and time limit; ``overrides`` (e.g.
        ``max_episode_steps``, ``render_mode``) win. No passive checker unless asked: it repeated warnings
        about a registered env's internals (kitchen's shared arrays) that a user cannot fix."""
        registered = self.registered_spec(source)
        steps = overrides.pop("max_episode_steps", self.max_episode_steps)
        kwargs = {"disable_env_checker": True, **self.kwargs, **overrides}
        self._check_settings(source, {k: v for k, v in kwargs.items() if k == "render_mode"}, steps)
        return gym.make(registered, max_episode_steps=steps, **kwargs)

    # ---------------------------------------------------------------- comparing
    def matches(self, spec: EnvSpec | None) -> bool:
        """Whether ``spec`` (e.g. ``env.spec``) is this env: same id, kwargs and time limit, where
        kwargs and time limit this record leaves out are the registered ones."""
        if spec is None or spec.id != self.id:
            return False
        registered = gym.registry.get(self.id)
        defaults = dict(registered.kwargs) if registered is not None else {}
        steps = self.max_episode_steps
        if steps is None and registered is not None:
            steps = registered.max_episode_steps
        if spec.max_episode_steps != steps:
            return False
        ours, theirs = {**defaults, **self.kwargs}, {**defaults, **spec.kwargs}
        return set(ours) == set(theirs) and all(_same_json(ours[k], theirs[k]) for k in ours)


def make_registered_env(
    stored: str | Mapping[str, Any] | EnvRecord, *, source: str = "the checkpoint", **overrides: Any
) -> gym.Env:
    """Build a stored evaluation env safely (see the module docstring); ``overrides`` are the
    caller's own ``gym.make`` arguments (e.g. ``max_episode_steps``)."""
    record = stored if isinstance(stored, EnvRecord) else EnvRecord.from_stored(stored, source)
    return record.make(source, **overrides)


# ---------------------------------------------------------------------------------------- action spaces
def check_action_space(
    space: gym.Space, low: tuple[float, ...], high: tuple[float, ...], what: str = "the env"
) -> None:
    """ValueError naming both spaces unless ``space`` is a Box with ``len(low)`` values and bounds
    ``low``/``high`` (the dataset's action space, flattened)."""
    expected = f"Box(low={list(low)}, high={list(high)}, shape=({len(low)},))"
    ok = isinstance(space, gym.spaces.Box) and int(np.prod(space.shape)) == len(low)
    if ok:
        ours = np.asarray([low, high], np.float64)
        box: Any = space  # a Box here
        theirs = np.stack([np.ravel(box.low), np.ravel(box.high)]).astype(np.float64)
        ok = bool(np.allclose(theirs, ours, rtol=1e-6, atol=1e-6))
    if not ok:
        raise ValueError(
            f"{what}'s action space {space} is not the dataset's action space {expected}: this agent "
            "decodes actions for the dataset's space. Evaluate on an env with the same action space."
        )
