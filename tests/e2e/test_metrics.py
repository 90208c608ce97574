"""Prometheus metrics of a real node and a real worker, parsed with prometheus-client's parser."""

from __future__ import annotations

import http.client
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster.lab import start_cluster
from e2e.node import Node, free_port, wait_for
from fixtures.build import wat
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(node: Node) -> Samples:
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
    try:
        conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {node.key}"})
        response = conn.getresponse()
        body = response.read().decode()
        assert response.status == 200, body
        assert response.getheader("Content-Type", "").startswith("text/plain")
        return parse(body)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    running = Node(tmp_path_factory.mktemp("metrics") / "data", None, "--workers", "2").start()
    yield running
    running.stop()


def test_counts_add_up_over_every_api_process(node: Node) -> None:
    assert node.upload("_", "m", wat("fl_hello"))[0] == 201
    assert node.upload("_", "bad", wat("fl_error"))[0] == 201
    assert len(node.api_pids()) == 2
    for n in range(20):  # a new connection each: both API processes serve some
        assert node.invoke("_", "m", {"n": n})[0] == 200
    for _ in range(3):
        assert node.invoke("_", "bad", {})[0] == 422
    ok = (("function", "m"), ("module", "_"), ("outcome", "ok"))
    failed = (("function", "bad"), ("module", "_"), ("outcome", "function"))
    # Each API process writes its counts within WRITE_DELAY_S (20 ms) of a call.
    wait_for(
        lambda: scrape(node).get(("fless_invocations_total", failed)) == 3,
        5,
        "the counts of both API processes",
    )
    samples = scrape(node)
    assert samples[("fless_invocations_total", ok)] == 20
    assert samples[("fless_invocations_total", failed)] == 3
    assert samples[("fless_invoke_seconds_count", ())] >= 23
    assert samples[("fless_execution_seconds_count", ())] >= 23
    assert samples[("fless_cache_lookups_total", (("result", "memory"),))] >= 1
    assert samples[("fless_pushed_code_bytes_total", ())] > 0
    assert samples[("fless_node_memory_bytes", (("kind", "total"),))] > 0
    assert samples[("fless_members", (("state", "alive"),))] >= 1


def test_metrics_need_a_key(node: Node) -> None:
    status, _ = node.request("GET", "/metrics", auth=False)
    assert status == 401


def test_a_worker_serves_its_own_metrics(tmp_path: Path) -> None:
    port = free_port()
    env = {"FLESS_WORKER_METRICS_PORT": str(port)}
    with start_cluster(tmp_path, {"w": 1024}, worker_env=env) as cluster:
        assert cluster.core.upload("_", "f", wat("fl_hello"))[0] == 201
        for n in range(5):
            assert cluster.invoke("f", {"n": n})[0] == 200
        url = f"http://127.0.0.1:{port}/metrics"
        wait_for(lambda: urllib.request.urlopen(url, timeout=5).status == 200, 10, "exporter")
        with urllib.request.urlopen(url, timeout=5) as response:
            samples = parse(response.read().decode())
        assert samples[("fless_execution_seconds_count", ())] == 5
        # pushed at create and compiled there: every call found it in memory
        assert samples[("fless_cache_lookups_total", (("result", "memory"),))] == 5
        assert samples[("fless_cache_bytes", ())] > 0
        assert samples[("fless_members", (("state", "alive"),))] >= 2
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
        assert info.value.code == 404
    assert not os.environ.get("PROMETHEUS_MULTIPROC_DIR")


ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_dashboard_and_scrape_config_name_real_metrics(node: Node) -> None:
    import json
    import re

    import yaml

    # Labelled families appear at their first sample: invoke once, so this
    # test does not rely on the others having run first.
    assert node.upload("_", "dash", wat("fl_hello"))[0] == 201
    assert node.invoke("_", "dash", {})[0] == 200
    exported = {name for name, _ in scrape(node)}
    families = {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in exported}
    dashboard = json.loads((ROOT / "conf" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert exprs
    for expr in exprs:
        for name in re.findall(r"\bfless_[a-z_]+", expr):
            assert re.sub(r"_(total|bucket|count|sum)$", "", name) in families, (name, expr)
    config = yaml.safe_load((ROOT / "conf" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["fless-core"]["metrics_path"] == "/metrics"
    assert jobs["fless-core"]["authorization"]["type"] == "Bearer"
    assert jobs["fless-workers"]["metrics_path"] == "/metrics"
