"""Whatever a sender posts, mapping ends in events the codec accepts or in `Unmappable` (a 400/422
whose body is kept), never in another exception (a 500 that loses the body)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.gateway.config import load_mapping
from streams.gateway.mapping import Unmappable, convert, convert_native

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "webhooks"
MAPPING = load_mapping(REPO / "samples" / "mapping.yaml")
BODIES = {p.name: json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))}
SOURCE = {"alertmanager": "alertmanager", "grafana": "alertmanager", "zendesk": "zendesk", "jira": "jira"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=False)
    | st.sampled_from(["", "firing", "resolved", "SOLVED", "solved", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59",
                       "2026-03-10T10:00:00Z", "2026-03-10T10:00:00", "zen:ticket:1", "urgent", "Resolved"])
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=8)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _paths(v, prefix + (i,))
    return found


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(value[path[0]], path[1:], new)
    return copy


@st.composite
def mutated(draw):
    name = draw(st.sampled_from(sorted(BODIES)))
    body = BODIES[name]
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(body)))
        body = _replace(body, path, draw(json_values))
    return SOURCE[name.split("_")[0]], body


def _check(source: str, body: Any) -> None:
    try:
        conversion = convert(source, json.dumps(body), MAPPING)
    except Unmappable:
        return
    assert all(isinstance(e.value, bytes) and e.key for e in conversion.events)


@settings(max_examples=400, deadline=None)
@given(mutated())
def test_mutated_vendor_bodies_map_or_are_unmappable(case):
    _check(*case)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["alertmanager", "zendesk", "jira"]), json_values)
def test_arbitrary_json_maps_or_is_unmappable(source, body):
    _check(source, body)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_native_or_vendor(raw):
    for call in (lambda: convert_native(raw), lambda: convert("zendesk", raw, MAPPING)):
        try:
            call()
        except Unmappable:
            pass


def _at(body: dict, path: tuple, value: Any) -> str:
    return json.dumps(_replace(body, path, value))



@pytest.mark.parametrize("source, name, path, value, message", [
    ("jira", "jira_issue_updated_waiting.json", ("timestamp",), 10**20, "timestamp: 100000000000000000000 is out of range"),
    ("jira", "jira_issue_updated_waiting.json", ("timestamp",), 253402300800000, "timestamp: 253402300800000 is out of range"),
    ("alertmanager", "alertmanager_firing.json", ("alerts", 0, "startsAt"), "9999-12-31T23:59:59-23:59",
     "alerts[0].startsAt: '9999-12-31T23:59:59-23:59' is out of range"),
    ("zendesk", "zendesk_ticket_created.json", ("time",), "0001-01-01T00:00:00+01:00",
     "time: '0001-01-01T00:00:00+01:00' is out of range"),
])
def test_instants_out_of_range_are_unmappable(source, name, path, value, message):
    if source == "alertmanager":   # one bad alert is rejected alone (review ingest.md F2)
        assert convert(source, _at(BODIES[name], path, value), MAPPING).rejected == [message]
        return
    with pytest.raises(Unmappable) as info:
        convert(source, _at(BODIES[name], path, value), MAPPING)
    assert str(info.value) == message


async def test_a_mapping_bug_is_a_422_and_the_body_is_kept(monkeypatch):
    from aiohttp.test_utils import TestClient, TestServer

    from streams.gateway import server
    from streams.gateway.settings import GatewaySettings

    class Sink:
        records: list = []

        async def send_all(self, records):
            self.records += records

    def broken(*args):
        raise KeyError("surprise")

    monkeypatch.setattr(server, "convert", broken)
    sink = Sink()
    gateway = server.Gateway(GatewaySettings(alertmanager_token="am-token-0123456789"), MAPPING, sink)
    async with TestClient(TestServer(server.build_app(gateway), host="127.0.0.1")) as client:
        r = await client.post("/v1/alertmanager", data=b"{}", headers={"Authorization": "Bearer am-token-0123456789"})
        assert r.status == 422 and (await r.json())["reason"] == "could not map the body: KeyError: 'surprise'"
    assert [x.value for x in sink.records] == [b"{}"]
