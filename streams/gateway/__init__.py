"""Ingestion from the tools users run (SPEC §13): webhook bodies -> native input events.

- `config`: the mapping file (YAML, validated like contracts);
- `mapping`: pure functions, vendor payload + mapping -> native events with deterministic ids;
- `server`: `slaproc gateway`, the aiohttp service that produces them to the input topics;
- `convert`: `slaproc convert`, the same mapping offline over a JSON-lines file.
"""
