"""Chart conventions: ServiceAccount, NetworkPolicy, topology spread, the
`helm test` hook (run for real: its script against the chart's Envoy with the
built module, listening on "::", called over IPv4), and the chart under Helm 3
rendering the same manifests as under Helm 4."""

from __future__ import annotations

import socket
import subprocess

import pytest
import yaml

from tests.deploy.artifacts import CI_VALUES, REPO, RunningEnvoy, chart_envoy_config, find, parse_manifests, run

HELM3_INSTALLER = REPO / "tests" / "deploy" / "tools" / "install-helm3.sh"
HELM3_VERSION = "v3.17.2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def egress_docs(rendered) -> list[dict]:
    return rendered(next(p for p in CI_VALUES if p.stem == "egress"))


def test_envoy_runs_under_its_own_service_account_without_a_token(rendered):
    docs = egress_docs(rendered)
    account = find(docs, "ServiceAccount")
    pod = find(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert account["automountServiceAccountToken"] is False and pod["automountServiceAccountToken"] is False


def test_network_policy_admits_the_clients_and_limits_egress(rendered):
    docs = egress_docs(rendered)
    policy = find(docs, "NetworkPolicy")["spec"]
    pod = find(docs, "Deployment")["spec"]["template"]
    test_pod = next(d for d in docs if d["kind"] == "Pod")
    assert policy["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    api, health = policy["ingress"]
    assert api["ports"] == [{"port": "http", "protocol": "TCP"}]
    values = yaml.safe_load(next(p for p in CI_VALUES if p.stem == "egress").read_text())
    peers = api["from"]
    assert values["networkPolicy"]["clients"][0] in peers
    # The helm test pod is let in; nothing else of the namespace is.
    assert any(peer.get("podSelector", {}).get("matchLabels", {}).items() <= test_pod["metadata"]["labels"].items()
               for peer in peers if "podSelector" in peer)
    assert health["ports"] == [{"port": "health", "protocol": "TCP"}] and "from" not in health
    ports = sorted((p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"])
    assert ports == [(53, "TCP"), (53, "UDP"), (443, "TCP")]


def test_no_network_policy_unless_enabled(rendered):
    docs = rendered(next(p for p in CI_VALUES if p.stem == "vertex"))
    assert not [d for d in docs if d["kind"] == "NetworkPolicy"]


def test_replicas_spread_over_nodes_and_zones_by_default(rendered):
    docs = egress_docs(rendered)
    pod = find(docs, "Deployment")["spec"]["template"]
    constraints = pod["spec"]["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in constraints] == ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]
    for c in constraints:
        assert c["whenUnsatisfiable"] == "ScheduleAnyway"
        assert c["labelSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    custom = find(rendered(next(p for p in CI_VALUES if p.stem == "hpa-pdb")), "Deployment")
    assert [c["topologyKey"] for c in custom["spec"]["template"]["spec"]["topologySpreadConstraints"]] == [
        "topology.kubernetes.io/zone"]


@pytest.fixture(scope="module")
def chart_with_test_hook(helm_template, wasm, emulator, tmp_path_factory):
    """The chart's Envoy (default listen address, "::") in front of the emulator,
    and the rendered `helm test` pod."""
    listen, admin, health = free_port(), free_port(), free_port()
    proc = helm_template("--set", f"upstream.host=127.0.0.1,upstream.port={emulator.port},upstream.tls=false",
                         "--set", f"envoy.listenPort={listen},envoy.adminPort={admin},envoy.healthPort={health}")
    assert proc.returncode == 0, proc.stderr
    docs = parse_manifests(proc.stdout)
    test_pod = next(d for d in docs if d["kind"] == "Pod")
    with RunningEnvoy(chart_envoy_config(docs, wasm), tmp_path_factory.mktemp("hook")) as envoy:
        yield envoy, test_pod, listen


def run_hook(test_pod: dict, url: str) -> subprocess.CompletedProcess:
    container = test_pod["spec"]["containers"][0]
    assert container["command"] == ["/bin/sh", "-c"]
    return run(["/bin/sh", "-c", container["args"][0]], env={"URL": url, "PATH": "/usr/bin:/bin"}, timeout=60)


def test_helm_test_hook_passes_against_the_chart_envoy(chart_with_test_hook):
    envoy, test_pod, listen = chart_with_test_hook
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    env = {e["name"]: e["value"] for e in test_pod["spec"]["containers"][0]["env"]}
    assert env["URL"] == "http://gr-gemini-router.ai:80"
    proc = run_hook(test_pod, f"http://127.0.0.1:{listen}")
    assert proc.returncode == 0, proc.stdout + proc.stderr + envoy.log_tail()
    assert "ok: the filter refused model ../x" in proc.stdout


def test_helm_test_hook_fails_without_the_filter(chart_with_test_hook, emulator):
    """Straight to the upstream (no filter), the same request is not refused by
    the filter, and the hook says so."""
    _, test_pod, _ = chart_with_test_hook
    proc = run_hook(test_pod, emulator.url)
    assert proc.returncode != 0, proc.stdout


@pytest.fixture(scope="module")
def helm3() -> str:
    proc = run([str(HELM3_INSTALLER)], timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"{HELM3_INSTALLER.name} failed:\n{proc.stderr}", pytrace=False)
    path = proc.stdout.strip().splitlines()[-1]
    assert run([path, "version", "--template", "{{.Version}}"]).stdout.strip() == HELM3_VERSION
    return path


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.stem)
def test_helm3_lints_and_renders_what_helm4_renders(values_file, helm3, chart, rendered):
    lint = run([helm3, "lint", "--strict", str(chart), "-f", str(values_file)])
    assert lint.returncode == 0, lint.stdout + lint.stderr
    proc = run([helm3, "template", "gr", str(chart), "--namespace", "ai", "-f", str(values_file)])
    assert proc.returncode == 0, proc.stderr
    assert parse_manifests(proc.stdout) == rendered(values_file)


def test_helm3_refuses_bad_values_too(helm3, chart):
    proc = run([helm3, "template", "gr", str(chart), "--set", "mode=both"])
    assert proc.returncode != 0 and "mode" in proc.stderr
