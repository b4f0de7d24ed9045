"""Reproducible installs: `constraints.txt` pins every package `make` installs, the install
under test is that pinned set, and `slaproc --version` names what decides the outputs
besides the input (catalog versions, the holidays release)."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import distributions, version
from pathlib import Path

from policies.catalog import default_catalog

REPO = Path(__file__).resolve().parents[2]
SLAPROC = Path(sys.executable).parent / "slaproc"


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def pins() -> dict[str, str]:
    lines = (REPO / "constraints.txt").read_text().splitlines()
    found = {}
    for line in lines:
        if line.strip() and not line.startswith("#"):
            name, _, pinned = line.partition("==")
            assert pinned, f"constraints.txt: {line!r} is not pinned with =="
            found[_name(name)] = pinned.strip()
    return found


def test_every_dependency_of_the_project_is_pinned() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]}
    assert wanted - set(pins()) == set()


def test_the_installed_packages_are_the_pinned_ones() -> None:
    """What the suite runs on is what the lock says (make installs with -c constraints.txt)."""
    installed = {_name(d.metadata["Name"]): d.version for d in distributions()}
    differing = {name: (pinned, installed[name]) for name, pinned in pins().items()
                 if name in installed and installed[name] != pinned}
    assert not differing, f"installed versions differ from constraints.txt (pinned, installed): {differing}"


def test_version_names_the_catalog_versions_and_the_holidays_release() -> None:
    cmd = [str(SLAPROC)] if SLAPROC.exists() else [sys.executable, "-m", "streams.cli"]
    done = subprocess.run([*cmd, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    catalog = default_catalog()
    expected = [f"slaproc {version('slaproc')}"]
    expected += [f"  catalog {p} {catalog.version(p)}" for p in catalog.policies]
    expected += [f"  holidays {version('holidays')}"]
    assert done.stdout.splitlines() == expected
