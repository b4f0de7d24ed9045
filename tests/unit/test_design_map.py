"""docs/design.md is a map of the code: every file or folder it names exists, and its
"Where is" answers name the files that do the thing."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DESIGN = (REPO / "docs" / "design.md").read_text()
TOP = ("events/", "policies/", "streams/", "tests/", "bench/", "docs/", "deploy/", "schemas/", "samples/")
# A path: starts with a top-level folder; `<name>` or `*` stand for any one name.
PATH = re.compile(r"(?<![\w/.])((?:%s)[\w./<>*-]*)" % "|".join(re.escape(t) for t in TOP))


def named_paths(text: str) -> set[str]:
    return {m.group(1).rstrip(".,;:)") for m in PATH.finditer(text)}


def exists(path: str) -> bool:
    pattern = re.sub(r"<[^>]+>", "*", path)
    if "*" in pattern:
        return any(REPO.glob(pattern.rstrip("/")))
    return (REPO / pattern).exists()


def test_every_path_design_md_names_exists():
    paths = named_paths(DESIGN)
    assert len(paths) > 40  # the map names the modules; a broken pattern must not pass empty
    missing = sorted(p for p in paths if not exists(p))
    assert not missing, f"docs/design.md names paths that do not exist: {missing}"


def test_the_path_check_sees_a_missing_file():
    assert named_paths("see `policies/nothing_here.py` and streams/demo/__init__.py.") == {
        "policies/nothing_here.py", "streams/demo/__init__.py"}
    assert not exists("policies/nothing_here.py") and exists("policies/catalog/<policy>.yaml")


def _answer(question: str) -> str:
    match = re.search(r"^- \*\*… %s\?\*\*(.*?)(?=^- \*\*|^## )" % re.escape(question), DESIGN, re.S | re.M)
    assert match, f"no answer to {question!r} in docs/design.md"
    return match.group(1)


def test_the_questions_lead_to_the_files_that_do_it():
    assert "events/codec.py" in _answer("a Kafka record turned into an event")
    assert "streams/app.py" in _answer("a Kafka record turned into an event")
    assert "policies/tickets.py" in _answer("a breach given its due time")
    assert "_Clocks._schedule" in _answer("a breach given its due time")
    assert "policies/uptime.py" in _answer("a month's refund computed")
    # and the functions named there are in those files
    assert "def _schedule(" in (REPO / "policies" / "tickets.py").read_text()
    assert "def close_month(" in (REPO / "policies" / "uptime.py").read_text()
    assert "def _input_batch(" in (REPO / "streams" / "app.py").read_text()
