"""The repository stands on its own: no file names a path outside it (a machine's absolute
path, a folder above the checkout), and every reference to the product contract ("SPEC §n",
"docs/spec.md §n") names a section that exists in `docs/spec.md`."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "docs" / "spec.md"

#: Ways a file can reach outside the checkout. Each is a mistake wherever it appears: code
#: and tests must not read such files, and docs must not send a reader to them.
OUTSIDE = re.compile(r"/work/|/root/|/home/\w|shared/SPEC|shared/seeds|\.\./shared|REPO\.parent\b")
#: A reference to a section of the product contract.
REFERENCE = re.compile(r"(?:SPEC|docs/spec\.md) §(\d+)")
THIS_FILE = Path(__file__).resolve().relative_to(REPO).as_posix()


def repository_files() -> list[Path]:
    """The files of the checkout: git's list where there is one (what a clone holds)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
        names = [n for n in listed.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        names = [p.relative_to(REPO).as_posix() for p in REPO.rglob("*")
                 if p.is_file() and not {".git", ".venv"} & set(p.relative_to(REPO).parts)]
    return [REPO / n for n in names if n != THIS_FILE and (REPO / n).is_file()]


def _text(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data:
        return None
    return data.decode("utf-8", errors="replace")


def spec_sections() -> set[int]:
    return {int(n) for n in re.findall(r"^## (\d+)\. ", SPEC.read_text(encoding="utf-8"), re.M)}


def test_the_spec_has_the_sections_of_the_contract() -> None:
    assert spec_sections() == set(range(1, 16))


def test_no_file_names_a_path_outside_the_repository() -> None:
    found = []
    for path in repository_files():
        text = _text(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:120]}")
    assert not found, "\n".join(found)


def test_every_spec_reference_resolves_to_a_section_of_docs_spec() -> None:
    sections = spec_sections()
    dangling, seen = [], 0
    for path in repository_files():
        text = _text(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for section in REFERENCE.findall(line):
                seen += 1
                if int(section) not in sections:
                    dangling.append(f"{path.relative_to(REPO)}:{number}: §{section}")
    assert seen > 0, "no reference found: the pattern no longer matches how the tree cites the spec"
    assert not dangling, "\n".join(dangling)


@pytest.mark.parametrize("line, outside", [
    ('SPEC = Path("/work/shared/SPEC.md")', True),
    ("candidates = [REPO.parent / 'shared' / 'SPEC.md']", True),
    ("# see ../shared/seeds/000.txt", True),
    ("# docs/spec.md §8 (monthly uptime)", False),
])
def test_the_outside_pattern_catches_what_it_is_for(line: str, outside: bool) -> None:
    assert bool(OUTSIDE.search(line)) is outside
