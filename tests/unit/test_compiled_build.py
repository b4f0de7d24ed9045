"""The compiled build of the core (`make compiled`, setup_compiled.py): when its `.so` files are
present they are the build of the sources as they are, of exactly the listed modules, and the
outputs are byte-identical to the plain-Python core's. Without them (`make pure`, no C compiler)
the plain-Python core runs and only the listing is checked."""
from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"


def listed_modules() -> list[str]:
    """`COMPILED_MODULES` of setup_compiled.py, read without running it (it imports mypyc)."""
    tree = ast.parse((REPO / "setup_compiled.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "COMPILED_MODULES":
            return [str(p) for p in ast.literal_eval(node.value)]
    raise AssertionError("setup_compiled.py has no COMPILED_MODULES list")


def built_extensions() -> dict[str, Path]:
    """Module path (`policies/tickets.py`) -> its `.so`, for the core's extension modules present."""
    found = {}
    for package in ("events", "policies"):
        for path in (REPO / package).iterdir():
            for suffix in EXTENSION_SUFFIXES:
                if path.name.endswith(suffix) and path.name.count(".") > 1:
                    found[f"{package}/{path.name.split('.')[0]}.py"] = path
    return found


def test_the_listed_modules_exist_and_are_in_the_typed_core():
    listed = listed_modules()
    assert listed and len(listed) == len(set(listed))
    for module in listed:
        assert (REPO / module).is_file(), module
        assert module.split("/")[0] in ("events", "policies"), f"{module}: only the mypy --strict core is compiled"


def test_a_present_build_is_of_the_listed_modules_and_not_older_than_the_sources():
    built = built_extensions()
    if not built:
        pytest.skip("no compiled build (make pure, or no C compiler): the plain-Python core runs")
    shared = [m for m in built if m.endswith("__mypyc.py")]
    modules = sorted(m for m in built if m not in shared)
    assert modules == sorted(listed_modules()), "the .so files are not the build of setup_compiled.py's list: make compiled"
    # The compiled code is in the group's shared library (rebuilt whenever a module changes); the
    # per-module .so are shims that stay as they were.
    built_at = max(path.stat().st_mtime for path in built.values())
    sources = [p for package in ("events", "policies") for p in (REPO / package).glob("*.py")]
    stale = [str(p.relative_to(REPO)) for p in sources if p.stat().st_mtime > built_at]
    assert not stale, f"sources changed after the compiled build (the .so would run old code): {stale}; make compiled"


def test_the_build_in_use_is_the_one_on_disk():
    import policies.tickets

    compiled = "policies/tickets.py" in built_extensions()
    assert policies.tickets.__file__.endswith(".py") is not compiled


def _replay(events: Path, contracts: Path, until: str, pure: bool) -> bytes:
    """`slaproc replay` in a fresh interpreter, on the compiled or the plain-Python core."""
    code = ("import sys; from bench.replay import use_pure_python\n"
            + ("use_pure_python()\n" if pure else "")
            + "from streams.cli import main; sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", code, "replay", str(events), "--contracts", str(contracts),
                           "--until", until, "-q"], cwd=REPO, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def _generated(out: Path) -> tuple[Path, Path, str]:
    """A bench workload with late lines and many customers (rebuilds, retractions, parking)."""
    subprocess.run([sys.executable, "-m", "bench.generate", "--events", "6000", "--tickets", "600", "--seed", "7",
                    "--late-fraction", "0.1", "--customers", "40", "--out", str(out)],
                   cwd=REPO, check=True, capture_output=True, timeout=300)
    until = json.loads((out / "meta.json").read_text())["until"]
    return out / "events.jsonl", out / "contracts.yaml", until


@pytest.mark.parametrize("workload", ["sample", "generated"])
def test_compiled_and_plain_core_write_the_same_bytes(workload, tmp_path):
    if not built_extensions():
        pytest.skip("no compiled build: nothing to compare with")
    if workload == "sample":
        events, contracts, until = SAMPLES / "events.jsonl", SAMPLES / "contracts.yaml", "2026-05-01T02:00:00Z"
    else:
        events, contracts, until = _generated(tmp_path / "work")
    compiled, pure = _replay(events, contracts, until, pure=False), _replay(events, contracts, until, pure=True)
    assert compiled.count(b"\n") > 100
    assert hashlib.sha256(compiled).hexdigest() == hashlib.sha256(pure).hexdigest()
