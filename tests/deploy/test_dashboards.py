"""Grafana provisioning and dashboards: JSON loads, the files are what the generator
writes, every panel, target, variable and annotation names the provisioned datasource,
and the layout and templating are sound."""
from __future__ import annotations

import importlib.util
import json

import pytest
import yaml

from tests.deploy.conftest import REPO

GRAFANA = REPO / "deploy" / "grafana"
DASHBOARD_FILES = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCES = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
PROVISIONED_UIDS = {d["uid"] for d in DATASOURCES["datasources"]}


def _generator():
    spec = importlib.util.spec_from_file_location("build_dashboards", GRAFANA / "build_dashboards.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_three_dashboards_exist() -> None:
    assert {p.name for p in DASHBOARD_FILES} == {"sla-overview.json", "uptime-refunds.json",
                                                 "operations.json"}


def test_committed_json_is_the_generator_output() -> None:
    rendered = _generator().render()
    for path in DASHBOARD_FILES:
        assert path.read_text() == rendered[path.name], \
            f"{path.name} is stale: run python deploy/grafana/build_dashboards.py"


def test_the_datasource_is_provisioned_with_a_fixed_uid() -> None:
    [source] = DATASOURCES["datasources"]
    assert source == source | {"uid": "prometheus", "type": "prometheus", "url": "http://prometheus:9090"}


def test_the_dashboard_provider_points_at_the_mounted_directory() -> None:
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "dashboards.yml").read_text())
    [provider] = providers["providers"]
    assert provider["type"] == "file"
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in mounts


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=[p.name for p in DASHBOARD_FILES])
def test_every_reference_names_the_provisioned_datasource(path) -> None:
    board = json.loads(path.read_text())
    refs = []
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        refs.append((panel["title"], panel["datasource"]))
        assert panel["targets"], f"{panel['title']}: no query"
        refs += [(f"{panel['title']} {t['refId']}", t["datasource"]) for t in panel["targets"]]
    refs += [(f"variable {v['name']}", v["datasource"]) for v in board["templating"]["list"]]
    refs += [(f"annotation {a['name']}", a["datasource"]) for a in board["annotations"]["list"]]
    for where, ref in refs:
        assert isinstance(ref, dict) and ref.get("uid") in PROVISIONED_UIDS, f"{path.name}: {where}: {ref}"
        assert ref.get("type") == "prometheus"


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=[p.name for p in DASHBOARD_FILES])
def test_layout_and_ids(path) -> None:
    board = json.loads(path.read_text())
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    occupied = set()
    for p in board["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & occupied, f"{path.name}: {p['title']} overlaps another panel"
        occupied |= cells
    assert board["uid"].startswith("slaproc-") and len(board["uid"]) <= 40


def test_sla_dashboards_are_templated_by_provider_and_plan() -> None:
    board = json.loads((GRAFANA / "dashboards" / "sla-overview.json").read_text())
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert {"provider", "plan"} <= set(variables)
    for v in variables.values():
        assert v["query"]["query"].startswith("label_values(")
        assert v["includeAll"] and v["allValue"] == ".*"
    assert "$provider" in variables["plan"]["query"]["query"]  # plans of the chosen providers
    filtered = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert all("$provider" in expr for expr in filtered)


def test_overview_shows_first_response_quantiles_from_the_histogram() -> None:
    board = json.loads((GRAFANA / "dashboards" / "sla-overview.json").read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert any(e.startswith("histogram_quantile(0.9,") and "slaproc_first_response_seconds_bucket" in e
               for e in exprs)
