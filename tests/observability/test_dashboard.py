"""The dashboard in a real browser and the services' Prometheus metrics, against one real stack (`deaios up`,
4 storage nodes): headless Chromium (Debian's, driven by Playwright) opens the page `deaios up` serves, sees
every process up, sees a SIGKILLed storage node turn down within a refresh, sees an uploaded file appear with
its replication health; every service's `/metrics` is scraped and parsed with `prometheus_client.parser`;
`deaios status --json` reports the same. The screenshot goes to `.artifacts/observability/dashboard.png`
(or `$DEAIOS_TEST_ARTIFACTS/observability/`)."""

from __future__ import annotations

import json
import os
import random
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from deaios.cli import main
from deaios.dashboard.processes import stack_processes
from deaios.procs import http_get, pid_alive, project_root, rpc_call
from deaios.stack.config import Stack
from deaios.stack.process import RunningStack, deaios, running_stack

CHROMIUM = Path("/usr/bin/chromium")
# in this sandbox chromium would otherwise try to reach Google's hosts
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
NODES = 4
KILLED = 1  # the storage node the test kills


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    base = tmp_path_factory.mktemp("observe")
    with running_stack(base / "data", nodes=NODES, home=base / "home") as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Playwright gives the browser a new, empty profile (--user-data-dir) of its own
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def artifacts() -> Path:
    root = Path(os.environ.get("DEAIOS_TEST_ARTIFACTS") or project_root() / ".artifacts")
    out = root / "observability"
    out.mkdir(parents=True, exist_ok=True)
    return out


def scrape(url: str) -> dict[str, dict[tuple, float]]:
    """GET url and parse it: {sample name: {sorted label items: value}}."""
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(http_get(url, timeout=5).decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def total(samples: dict[str, dict[tuple, float]], name: str, **labels: str) -> float:
    return sum(v for k, v in samples.get(name, {}).items() if set(labels.items()) <= set(k))


def test_dashboard_in_a_browser(run: RunningStack, browser) -> None:
    stack = run.stack
    dashboard = stack.extra["dashboard"]
    assert dashboard["url"] in run.launcher_log()  # printed at start
    interval = float(dashboard["interval"])
    names = [p.name for p in stack_processes(stack)]
    assert {f"node-{i}" for i in range(NODES)} | {"anvil", "indexer", "kv", "compute-provider", "inft-oracle",
                                                 "da-node-0", "dashboard"} <= set(names)

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(dashboard["url"])
    for name in names:  # every process of the stack, listed and up
        page.wait_for_selector(f'tr[data-process="{name}"][data-state="up"]', timeout=30_000)
    assert page.inner_text("#processes .summary") == f"{len(names)} of {len(names)} up"

    # a storage node dies: the page shows it down within a refresh (the next snapshot, then the page's next
    # poll: at most two intervals, plus time to collect under load)
    os.kill(stack.storage_nodes[KILLED]["pid"], signal.SIGKILL)
    page.wait_for_selector(f'tr[data-process="node-{KILLED}"][data-state="down"]', timeout=(2 * interval + 6) * 1000)

    # a file is uploaded (while that node is down): it appears, with its shares counted on the live nodes
    sample = run.dir.parent / "sample.bin"
    sample.write_bytes(random.Random(17).randbytes(300_000))
    upload = deaios("storage", "upload", str(sample), "--stack", str(run.dir), home=run.home)
    assert upload.returncode == 0, upload.stderr
    root = json.loads(upload.stdout.strip().splitlines()[-1])["root"]
    row = page.wait_for_selector(f'#files tr[data-root="{root}"]', timeout=(3 * interval + 10) * 1000)
    page.wait_for_selector(f'#files tr[data-root="{root}"][data-health="degraded"]', timeout=20_000)
    assert "6/8" in row.inner_text()  # 2 segments x 4 nodes, 3 of them up

    page.wait_for_timeout(int(interval * 1000))  # one more point on the throughput chart
    page.screenshot(path=str(artifacts() / "dashboard.png"), full_page=True)
    assert errors == []


def test_metrics_of_every_service_parse(run: RunningStack) -> None:
    stack = Stack.load(run.dir / "stack.json")
    rpc_call(stack.indexer, "indexer_getShardedNodes")  # the indexer probes its nodes when asked
    scraped = {p.name: scrape(p.metrics_url) for p in stack_processes(stack)
               if p.metrics_url and pid_alive(p.pid)}
    assert f"node-{KILLED}" not in scraped and len(scraped) == len(stack_processes(stack)) - 3  # -launcher, anvil
    services = {name: next(iter(dict(k)["service"] for k in s["deaios_build_info"])) for name, s in scraped.items()}
    assert services["node-0"] == "storage" and services["indexer"] == "indexer" and services["kv"] == "kv"
    assert services["da-node-0"] == "da" and services["compute-provider"] == "compute"
    assert services["inft-oracle"] == "inft_oracle" and services["dashboard"] == "dashboard"

    for i in range(NODES):
        if i == KILLED:
            continue
        node = scraped[f"node-{i}"]
        # the launcher's readiness probe and the indexer's liveness probes called zgs_getStatus
        assert total(node, "deaios_storage_rpc_requests_total", method="zgs_getStatus") >= 1
        assert total(node, "deaios_storage_rpc_duration_seconds_count", method="zgs_getStatus") >= 1
        assert total(node, "deaios_storage_http_requests_total", route="/", status="200") >= 1
        assert total(node, "deaios_storage_stored_bytes_total", kind="share") > 0  # the uploaded file's shares
        assert total(node, "deaios_storage_next_tx_seq") == 1
        assert total(node, "deaios_storage_log_sync_height") >= stack.deploy_block
    kv = scraped["kv"]
    assert total(kv, "deaios_kv_replay_next_tx_seq") == total(kv, "deaios_kv_log_txs") == 1
    assert total(scraped["da-node-0"], "deaios_da_blobs_held") == 0
    assert total(scraped["da-node-0"], "deaios_da_rpc_requests_total", method="da_status") >= 1
    assert total(scraped["compute-provider"], "deaios_compute_http_requests_total",
                 route="/deaios/v1/service") >= 1
    assert total(scraped["compute-provider"], "deaios_compute_calls_billed_total") == 0
    assert total(scraped["inft-oracle"], "deaios_inft_oracle_http_requests_total", route="/info") >= 1
    assert total(scraped["indexer"], "deaios_indexer_live_nodes") == NODES - 1
    assert total(scraped["indexer"], "deaios_indexer_rpc_requests_total", method="indexer_getShardedNodes") >= 1
    assert total(scraped["dashboard"], "deaios_dashboard_collect_seconds_count") >= 1
    for samples in scraped.values():  # scrapes are not counted as requests
        for name, series in samples.items():
            if name.endswith("_http_requests_total"):
                assert all(dict(k)["route"] != "/metrics" for k in series), name


def test_status_reports_the_same(run: RunningStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEAIOS_HOME", str(run.home))
    result = CliRunner().invoke(main, ["status", "--stack", str(run.dir), "--json"])
    assert result.exit_code == 0, result.output
    snapshot = json.loads(result.stdout)
    states = {p["name"]: p["state"] for p in snapshot["processes"]}
    assert states.pop(f"node-{KILLED}") == "down"
    assert set(states.values()) == {"up"}
    assert snapshot["files"]["count"] == 1
    assert snapshot["files"]["files"][0]["replication"]["health"] == "degraded"
    assert snapshot["chain"]["block"] > run.stack.deploy_block
    assert snapshot["da"]["epoch"] >= 1 and snapshot["alignment"]["nodes"]
    assert [s["model"] for s in snapshot["compute"]["services"]] == ["deaios-echo"]
    table = CliRunner().invoke(main, ["status", "--stack", str(run.dir)])
    assert table.exit_code == 0, table.output
    assert "Processes" in table.stdout and f"node-{KILLED}" in table.stdout and "degraded" in table.stdout
