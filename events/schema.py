"""JSON Schemas of the wire format, generated from the models: `schemas/<type>.json`.

    python -m events.schema --write   # (re)write every file
    python -m events.schema --check   # exit 1 and list the files that are stale, missing or orphaned

Input events are described as they are accepted (validation mode: defaults are
optional, except `type`, which a message must always carry); output events as they
are written (serialization mode: every field is present).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from events.models import INPUT_MODELS, OUTPUT_MODELS

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "schemas"


def schema_for(event_type: str) -> dict[str, Any]:
    """The JSON Schema of one event type (input or output)."""
    if event_type in INPUT_MODELS:
        schema = INPUT_MODELS[event_type].model_json_schema(mode="validation")
        required = set(schema.get("required", ())) | {"type"}
        schema["required"] = [name for name in schema["properties"] if name in required]
        direction = "input"
    else:
        schema = OUTPUT_MODELS[event_type].model_json_schema(mode="serialization")
        direction = "output"
    schema["$schema"] = SCHEMA_DIALECT
    schema["$id"] = f"{event_type}.json"
    summary = f"slaproc {direction} event `{event_type}`."
    schema["description"] = " ".join(filter(None, (summary, schema.get("description", "").strip())))
    return schema


def render(event_type: str) -> str:
    """The file text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(schema_for(event_type), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def expected_files() -> dict[str, str]:
    """File name -> content for every event type."""
    return {f"{event_type}.json": render(event_type) for event_type in (*INPUT_MODELS, *OUTPUT_MODELS)}


def stale_files(directory: Path = DEFAULT_DIR) -> list[str]:
    """Names of files that differ from the models, are missing, or describe no event type."""
    expected = expected_files()
    problems = []
    for name, text in sorted(expected.items()):
        path = directory / name
        if not path.is_file():
            problems.append(f"{name} (missing)")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{name} (stale)")
    if directory.is_dir():
        for path in sorted(directory.glob("*.json")):
            if path.name not in expected:
                problems.append(f"{path.name} (no such event type)")
    return problems


def write_files(directory: Path = DEFAULT_DIR) -> list[str]:
    """Write every schema; remove schema files of types that no longer exist. Returns changed names."""
    directory.mkdir(parents=True, exist_ok=True)
    expected = expected_files()
    changed = []
    for name, text in sorted(expected.items()):
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(name)
    for path in sorted(directory.glob("*.json")):
        if path.name not in expected:
            path.unlink()
            changed.append(path.name)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m events.schema", description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="write schemas/<type>.json for every event type")
    action.add_argument("--check", action="store_true", help="exit 1 if any schema file is out of date")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"schema directory (default {DEFAULT_DIR})")
    args = parser.parse_args(argv)
    if args.write:
        for name in write_files(args.dir):
            print(f"wrote {args.dir / name}")
        return 0
    problems = stale_files(args.dir)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("run `make schemas` (python -m events.schema --write) to regenerate", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
