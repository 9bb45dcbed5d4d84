"""What a release ships: the sdist and wheel built from a copy of the checkout (so the checkout stays
clean) with the installed setuptools, the way `python -m build` calls it. `.ci/run` also runs
`python -m build` and `twine check`; docs/releasing.md has the release steps."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import latent_skills

if sys.version_info >= (3, 11):
    import tomllib
else:  # a dependency of the package on 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
# what a developer's checkout holds that a release never does
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv*", "runs", "datasets", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"
)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path, str]:
    """(sdist, wheel, the build's output)."""
    pytest.importorskip("setuptools")
    root = tmp_path_factory.mktemp("release")
    source, out = root / "source", root / "dist"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCE, symlinks=True)
    output = ""
    for hook in ("build_sdist", "build_wheel"):  # one process per hook, as build's frontend does
        script = f"import sys; from setuptools import build_meta; print(build_meta.{hook}(sys.argv[1]))"
        done = subprocess.run(
            [sys.executable, "-W", "always", "-c", script, str(out)],
            cwd=source,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        output += done.stdout + done.stderr
    (sdist,) = out.glob("latent_skills-*.tar.gz")
    (wheel,) = out.glob("latent_skills-*.whl")
    return sdist, wheel, output


def test_the_version_is_written_in_one_place(built):
    sdist, wheel, _ = built
    version = latent_skills.__version__
    assert sdist.name == f"latent_skills-{version}.tar.gz"
    assert wheel.name.startswith(f"latent_skills-{version}-")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    citation = (REPO / "CITATION.cff").read_text()
    assert re.search(r"(?m)^version: (\S+)$", citation)[1] == version  # type: ignore[index]


def test_the_wheel_states_its_license_without_deprecation_warnings(built):
    _, wheel, output = built
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata_name,) = (name for name in names if name.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
    assert metadata["License-Expression"] == "MIT"
    assert metadata["License-File"] == "LICENSE"
    assert metadata["Version"] == latent_skills.__version__
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    assert not any(name.startswith(("tests/", "benchmarks/", "examples/")) for name in names)
    assert "SetuptoolsDeprecationWarning" not in output and "License classifiers" not in output


def test_the_sdist_runs_the_tests(built):
    """The unpacked sdist holds the test suite with what it builds its datasets from (the fixtures
    make Minari datasets in code) and what the tests read beside the package."""
    sdist, _, _ = built
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    expected = {
        "LICENSE",
        "CHANGELOG.md",
        "CITATION.cff",
        "README.md",
        "BENCHMARKS.md",
        "pyproject.toml",
        "tests/conftest.py",
        "tests/agent_helpers.py",
        "tests/hub_server.py",
        "tests/window_reference.py",
        "latent_skills/data/makers/pointmaze.py",
        "hub/manifest.toml",
        "docs/releasing.md",
        "examples/quickstart.py",
        "benchmarks/summarize.py",
    }
    assert expected <= names, sorted(expected - names)
    tests_here = {path.relative_to(REPO).as_posix() for path in (REPO / "tests").glob("*.py")}
    assert tests_here <= names, sorted(tests_here - names)
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)
