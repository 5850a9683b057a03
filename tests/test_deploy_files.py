"""The deployment files are well-formed and agree with each other (Docker cannot run on the test machines):
compose.yaml's services, the Dockerfile's stages and user, nginx's upstreams, the Grafana dashboard's queries."""

from __future__ import annotations

import json
import re

import yaml

from tests.conftest import ROOT


def test_compose_has_the_province_topology():
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = doc["services"]
    assert {"postgres", "redis", "migrate", "api-1", "api-2", "worker-1", "worker-2", "proxy"} <= set(services)
    for name in ("api-1", "api-2"):
        assert services[name]["command"][:2] == ["motcua", "serve"] and "--no-worker" in services[name]["command"]
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgresql+psycopg://") and env["REDIS_URL"].startswith("redis://")
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name in ("worker-1", "worker-2"):
        assert services[name]["command"] == ["motcua", "worker"]
    assert services["proxy"]["ports"] == ["8080:80"]
    assert set(doc["volumes"]) == {"pgdata", "redisdata", "motcua-var"}


def test_nginx_routes_to_both_api_processes_and_hides_metrics():
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    upstreams = re.findall(r"server (api-\d):5000", conf)
    assert sorted(upstreams) == ["api-1", "api-2"] and set(upstreams) <= set(compose["services"])
    assert re.search(r"location = /metrics \{\s*return 404;", conf)
    assert conf.count("{") == conf.count("}")


def test_dockerfile_is_multi_stage_and_runs_unprivileged():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)", text, re.M)
    assert stages == ["build", "runtime"]
    runtime = text.split("AS runtime", 1)[1]
    assert "nodejs" not in runtime and "npm" not in runtime  # the build tools stay in the build stage
    assert re.search(r"^USER 10001:10001$", runtime, re.M)
    assert runtime.index("USER") < runtime.index("CMD")


def test_grafana_dashboard_queries_metrics_that_exist():
    dash = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    names = set(re.findall(r"motcua_[a-z_]+", " ".join(exprs)))
    source = (ROOT / "api" / "metrics.py").read_text()
    for n in names:
        base = re.sub(r"_(bucket|count|sum|total)$", "", n)
        assert f'"{base}"' in source, n
    assert {"motcua_timer_lag_seconds", "motcua_outbox_pending", "motcua_worker_heartbeat_age_seconds"} <= names
