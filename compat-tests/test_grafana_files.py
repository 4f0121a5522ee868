"""The Grafana dashboards, provisioning files and Prometheus scrape config in grafana/, checked as
files: no broker is started, and the tests run whatever --brokers says. The dashboards must import
into any Grafana without the import dialog's placeholders (fixed uids, no `__inputs`/`__requires`),
let the viewer pick the Prometheus datasource (every panel and variable on `${datasource}`), and
query only the metric families METRICS.md specifies, so that a renamed metric fails here instead of
leaving an empty panel. Whether each query returns data on a running cluster is
compat-tests/test_monitoring.py's job; this is the fast, static half (PromQL syntax included, through
promtool when it is on PATH)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "grafana"
METRICS_MD = ROOT / "METRICS.md"
DASHBOARD_FILES = sorted((GRAFANA / "dashboards").glob("*.json"))
EXPECTED_UIDS = {"sluice-cluster-overview", "sluice-topics", "sluice-consumer-groups", "sluice-broker-resources"}
PANEL_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PANEL_TYPES = {"timeseries", "stat", "row"}
METRIC_RE = re.compile(r"(?<![\w:])((?:sluice|process)_[A-Za-z0-9_:]*)")
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def all_panels(dashboard: dict) -> list[dict]:
    """Every panel, those inside collapsed rows included."""
    out = []
    for p in dashboard.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def query_panels(dashboard: dict) -> list[dict]:
    return [p for p in all_panels(dashboard) if p.get("type") != "row"]


def exprs(dashboard: dict) -> list[str]:
    return [t["expr"] for p in query_panels(dashboard) for t in p.get("targets", []) if t.get("expr")]


def substitute(expr: str) -> str:
    """What test_monitoring.py runs: a variable only as a `=~"$var"` regex, $__rate_interval only as a range."""
    expr = re.sub(r'=~"\$\w+"', '=~".*"', expr)
    return expr.replace("[$__rate_interval]", "[1m]")


def documented_metrics() -> tuple[set[str], set[str]]:
    """(every sluice_/process_ name METRICS.md mentions in backticks, the histogram families among them)."""
    text = METRICS_MD.read_text()
    names = {m for m in re.findall(r"`([A-Za-z0-9_:]+)`", text) if METRIC_RE.fullmatch(m)}
    histograms = set(re.findall(r"^\|\s*`(\w+)`\s*\|\s*histogram\b", text, re.M))
    return names, histograms


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict]:
    assert DASHBOARD_FILES, f"no dashboards under {GRAFANA / 'dashboards'}"
    return {f.name: load(f) for f in DASHBOARD_FILES}


def test_dashboards_have_fixed_unique_uids(dashboards):
    uids = [d.get("uid") for d in dashboards.values()]
    assert all(isinstance(u, str) and u for u in uids), uids
    assert len(set(uids)) == len(uids), uids
    assert EXPECTED_UIDS <= set(uids), uids  # links and bookmarks use them
    for name, d in dashboards.items():
        assert d.get("id") is None, f"{name}: a dashboard id is per Grafana instance"
        assert d.get("title"), name


def test_no_import_placeholders(dashboards):
    for name, d in dashboards.items():
        assert "__inputs" not in d and "__requires" not in d, f"{name}: exported 'for sharing externally'"
        assert "${DS_" not in json.dumps(d), f"{name}: an import placeholder datasource"


def test_datasource_variable(dashboards):
    for name, d in dashboards.items():
        variables = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
        ds = variables.get("datasource")
        assert ds is not None, f"{name}: no datasource variable"
        assert (ds["type"], ds["query"]) == ("datasource", "prometheus"), ds
        for v in variables.values():
            if v["type"] == "query":
                assert v.get("datasource") == PANEL_DATASOURCE, (name, v["name"])


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.stem)
def test_every_panel_queries_the_datasource_variable(path):
    d = load(path)
    panels = query_panels(d)
    assert panels, f"{path.name}: no panels"
    for p in all_panels(d):
        assert p.get("type") in PANEL_TYPES, (path.name, p.get("title"), p.get("type"))
    for p in panels:
        where = f"{path.name}: panel {p.get('title')!r}"
        assert p.get("datasource") == PANEL_DATASOURCE, where
        targets = p.get("targets") or []
        assert any(t.get("expr", "").strip() for t in targets), f"{where} has no query"
        for t in targets:
            assert t.get("expr", "").strip(), f"{where}: an empty target"
            assert "legendFormat" in t, f"{where}: no legendFormat"
            assert t.get("datasource", PANEL_DATASOURCE) == PANEL_DATASOURCE, where


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.stem)
def test_layout(path):
    d = load(path)
    ids = [p.get("id") for p in all_panels(d)]
    assert len(set(ids)) == len(ids), f"{path.name}: panel ids repeat: {ids}"
    cells: dict[tuple[int, int], str] = {}
    for p in d["panels"]:  # collapsed rows' panels are laid out when the row opens
        g = p["gridPos"]
        assert g["w"] > 0 and g["h"] > 0 and 0 <= g["x"] and g["x"] + g["w"] <= 24, (path.name, p["title"], g)
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{path.name}: {p['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = p["title"]


def test_template_variables_only_where_the_monitoring_test_substitutes_them(dashboards):
    for name, d in dashboards.items():
        for e in exprs(d):
            assert "$" not in substitute(e), f"{name}: {e!r}: use a variable only as =~\"$var\" or [$__rate_interval]"
            # A fixed window breaks at other scrape intervals and zoom levels; Grafana sizes this one.
            for window in re.findall(r"\[([^\]]*)\]", e):
                assert window == "$__rate_interval", f"{name}: {e!r}: range [{window}]"


def test_metric_names_are_in_metrics_md(dashboards):
    names, histograms = documented_metrics()
    assert "sluice_requests_total" in names and "sluice_request_seconds" in histograms  # the parse works
    queries = [(n, e) for n, d in dashboards.items() for e in exprs(d)]
    queries += [(n, v["query"]) for n, d in dashboards.items()
                for v in d["templating"]["list"] if v["type"] == "query"]
    unknown = []
    for name, q in queries:
        for m in METRIC_RE.findall(q):
            base = next((m[:-len(s)] for s in HISTOGRAM_SUFFIXES if m.endswith(s)), None)
            if m not in names and base not in histograms:
                unknown.append((name, m))
    assert not unknown, f"metrics not in METRICS.md: {unknown}"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not on PATH")
def test_queries_are_valid_promql(dashboards, tmp_path):
    # promtool parses recording rules offline: one rule per query, as test_monitoring.py sends it.
    rules = [{"record": f"grafana:query_{i}", "expr": substitute(e)}
             for i, e in enumerate(e for d in dashboards.values() for e in exprs(d))]
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "grafana", "rules": rules}]}))
    res = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


def test_datasource_provisioning():
    doc = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "sluice.yml").read_text())
    assert doc["apiVersion"] == 1
    [ds] = doc["datasources"]
    assert (ds["name"], ds["uid"], ds["type"]) == ("Prometheus", "sluice-prometheus", "prometheus")
    assert ds["url"] == "http://127.0.0.1:9090"


def test_dashboard_provisioning():
    doc = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "sluice.yml").read_text())
    assert doc["apiVersion"] == 1
    [provider] = doc["providers"]
    assert provider["type"] == "file" and provider["options"]["path"], provider


def test_prometheus_config():
    path = GRAFANA / "prometheus.yml"
    doc = yaml.safe_load(path.read_text())
    [job] = [j for j in doc["scrape_configs"] if j["job_name"] == "sluice"]  # the dashboards select job="sluice"
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    # scripts/dev-cluster.sh: the controller's admin server on 9644, brokers 2..4 on 9645..9647.
    assert targets == [f"127.0.0.1:{p}" for p in (9644, 9645, 9646, 9647)], targets
    assert job.get("scrape_interval", doc.get("global", {}).get("scrape_interval")) == "5s"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not on PATH")
def test_prometheus_config_passes_promtool():
    res = subprocess.run(["promtool", "check", "config", str(GRAFANA / "prometheus.yml")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
