"""Helpers for golden scenarios: replay a scenario directory and compare with readable diffs."""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from policies.catalog import load_catalog
from policies.processor import Settings
from streams.replay import replay_file

GOLDEN = Path(__file__).parent / "golden"


@dataclass
class Scenario:
    name: str
    path: Path
    until: datetime | None
    types: list[str] | None
    at_risk: tuple[float, ...]
    subset: bool = False  # expected lines may omit fields (they then match any value)
    catalog: Path | None = None  # a catalog directory of the scenario (options `catalog:`); default the packaged one

    @classmethod
    def load(cls, path: Path) -> "Scenario":
        opts: dict[str, Any] = {}
        if (path / "options.yaml").exists():
            opts = yaml.safe_load((path / "options.yaml").read_text()) or {}
        until = opts.get("until")
        if isinstance(until, str):
            until = datetime.fromisoformat(until.replace("Z", "+00:00"))
        return cls(path.name, path, until, opts.get("types"), tuple(opts.get("at_risk", (0.5, 0.75, 0.9))),
                   opts.get("match") == "subset", path / opts["catalog"] if opts.get("catalog") else None)

    def replay(self) -> list[dict[str, Any]]:
        buf = io.BytesIO()
        replay_file(self.path / "events.jsonl", self.path / "contracts.yaml", self.until, buf, progress=None,
                    settings=Settings(at_risk_thresholds=self.at_risk),
                    catalog=load_catalog(self.catalog) if self.catalog is not None else None)
        return [json.loads(line) for line in buf.getvalue().splitlines()]

    def expected(self) -> list[dict[str, Any]]:
        text = (self.path / "expected.jsonl").read_text()
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def scenarios() -> list[Path]:
    return sorted(p for p in GOLDEN.iterdir() if p.is_dir() and (p / "events.jsonl").exists())


def _matches(expected: Any, actual: Any, subset: bool = False) -> bool:
    if expected == "*":
        return True
    if isinstance(expected, dict) and isinstance(actual, dict):
        keys_ok = expected.keys() <= actual.keys() if subset else expected.keys() == actual.keys()
        return keys_ok and all(_matches(expected[k], actual[k], subset) for k in expected)
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(_matches(e, a) for e, a in zip(expected, actual))
    return expected == actual


def compare(expected: list[dict[str, Any]], actual: list[dict[str, Any]], subset: bool = False) -> list[str]:
    """Multiset comparison with wildcards; returns human-readable problems (empty when equal)."""
    remaining = list(actual)
    missing = []
    for exp in expected:
        for i, act in enumerate(remaining):
            if _matches(exp, act, subset):
                del remaining[i]
                break
        else:
            missing.append(exp)
    problems = [f"missing:    {json.dumps(m, sort_keys=True)}" for m in missing]
    problems += [f"unexpected: {json.dumps(u, sort_keys=True)}" for u in remaining]
    return problems
