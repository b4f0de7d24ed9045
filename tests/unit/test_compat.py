"""streams/compat.py: the version check, and no private Faust/aiokafka use anywhere else (issue 17 item 1)."""
from __future__ import annotations

import argparse
import ast
import importlib.metadata
from pathlib import Path

import pytest

from streams import compat
from streams.worker import add_worker_flags, check_library_versions, run_worker

REPO = Path(__file__).resolve().parents[2]
LIBRARIES = ("faust", "aiokafka", "mode")
STDLIB_PRIVATE = {"_exit"}  # os._exit: documented


def _installed(versions: dict[str, str]):
    def version(dist: str) -> str:
        if dist not in versions:
            raise importlib.metadata.PackageNotFoundError(dist)
        return versions[dist]
    return version


def test_the_installed_versions_are_the_tested_ones():
    assert compat.check_versions() == []
    for dist in ("faust-streaming", "aiokafka"):
        assert compat.TESTED[dist] == importlib.metadata.version(dist)


def test_the_pins_are_the_tested_versions():
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep:
            pins[name.strip().lower()] = version.strip()
    pyproject = (REPO / "pyproject.toml").read_text()
    for dist, version in compat.TESTED.items():
        assert pins[dist] == version
    for dist in ("faust-streaming", "aiokafka"):
        assert f'"{dist}=={compat.TESTED[dist]}"' in pyproject


def test_an_untested_or_missing_version_is_named_with_the_way_out():
    versions = dict(compat.TESTED, aiokafka="0.15.0")
    del versions["mode-streaming"]
    problems = compat.check_versions(_installed(versions))
    assert len(problems) == 2
    assert problems[0].startswith("aiokafka 0.15.0 is installed, slaproc is tested with 0.14.0 only")
    assert problems[1].startswith("mode-streaming (not installed) is installed")
    assert all(compat.ALLOW_UNTESTED_ENV in p for p in problems)
    with pytest.raises(compat.UntestedVersionError) as err:
        compat.require_tested_versions(installed=_installed(versions))
    assert err.value.problems == problems
    assert compat.require_tested_versions(True, _installed(versions)) == problems  # the override: a warning
    assert compat.require_tested_versions(installed=_installed(dict(compat.TESTED))) == []


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_worker_flags(parser)
    return parser.parse_args(list(argv))


def test_the_worker_exits_non_zero_on_an_untested_version(monkeypatch, capsys):
    monkeypatch.setattr(compat, "TESTED", {**compat.TESTED, "faust-streaming": "0.99.0"})
    monkeypatch.delenv(compat.ALLOW_UNTESTED_ENV, raising=False)
    assert run_worker(_args()) == 2  # before any connection to a broker
    err = capsys.readouterr().err
    assert "slaproc worker: faust-streaming 0.15.3 is installed, slaproc is tested with 0.99.0 only" in err


def test_the_override_starts_with_a_warning(monkeypatch, capsys):
    monkeypatch.setattr(compat, "TESTED", {**compat.TESTED, "aiokafka": "0.99.0"})
    assert check_library_versions(_args("--allow-untested-versions"), environ={})
    assert check_library_versions(_args(), environ={compat.ALLOW_UNTESTED_ENV: "1"})
    assert not check_library_versions(_args(), environ={compat.ALLOW_UNTESTED_ENV: "0"})
    assert "warning: aiokafka 0.14.0 is installed, slaproc is tested with 0.99.0 only" in capsys.readouterr().err


# --- no private Faust/aiokafka API outside streams/compat.py --------------------------------

def _defined_here(trees: list[ast.AST]) -> set[str]:
    """Private names this repository defines itself (functions, classes, attributes it assigns)."""
    names = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)  # on self, or on an object of ours (a library's is caught apart)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
    return names


def _library_names(tree: ast.AST) -> set[str]:
    """Names bound by `import faust...` / `from aiokafka... import X` in a module."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names if a.name.split(".")[0] in LIBRARIES)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in LIBRARIES:
            names.update(a.asname or a.name for a in node.names)
    return names


def private_uses(sources: dict[Path, str], ours: set[str] = frozenset()) -> list[str]:
    """`file:line: what` for every private attribute of a library read or written, and every
    attribute assigned on a library's class or module (a patch), outside streams/compat.py.
    A private name the repository defines itself (`ours`, and any defined in `sources`) is ours."""
    trees = {path: ast.parse(text) for path, text in sources.items()}
    ours = set(ours) | _defined_here(list(trees.values()))
    found = []
    for path, tree in trees.items():
        if path.name == "compat.py" and path.parent.name == "streams":
            continue
        library = _library_names(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            owner = node.value.id if isinstance(node.value, ast.Name) else None
            private = node.attr.startswith("_") and not node.attr.startswith("__")
            if owner in library and (private or isinstance(node.ctx, ast.Store)):
                found.append(f"{path}:{node.lineno}: {owner}.{node.attr}")
            elif private and owner not in ("self", "cls") and node.attr not in ours | STDLIB_PRIVATE:
                found.append(f"{path}:{node.lineno}: .{node.attr}")
    return sorted(found)


def _sources() -> dict[Path, str]:
    return {path.relative_to(REPO): path.read_text() for folder in ("streams", "bench")
            for path in sorted((REPO / folder).rglob("*.py"))}


def test_no_private_faust_or_aiokafka_api_outside_compat():
    core = [ast.parse(path.read_text()) for folder in ("events", "policies") for path in (REPO / folder).rglob("*.py")]
    assert private_uses(_sources(), _defined_here(core)) == []


def test_the_check_finds_what_it_looks_for():
    sample = {Path("streams/x.py"): (
        "from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread\n"
        "def f(consumer, app):\n"
        "    consumer._committed_offset.get(1)\n"
        "    app.consumer._client._bootstrap_servers\n"
        "    AIOKafkaConsumerThread.seek_to_committed = f\n"
        "    AIOKafkaConsumerThread._highwaters\n"
        "class Ours:\n"
        "    def _mine(self):\n"
        "        self._own = 1\n"
        "        return other._mine(), other._own\n")}
    assert private_uses(sample) == [
        "streams/x.py:3: ._committed_offset", "streams/x.py:4: ._bootstrap_servers", "streams/x.py:4: ._client",
        "streams/x.py:5: AIOKafkaConsumerThread.seek_to_committed",
        "streams/x.py:6: AIOKafkaConsumerThread._highwaters"]
    assert private_uses({Path("streams/compat.py"): sample[Path("streams/x.py")]}) == []
