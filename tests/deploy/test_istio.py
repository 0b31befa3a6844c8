"""The Istio resources (deploy/istio/): checked against structural schemas of
the Istio APIs they use (tests/deploy/schemas/, kubernetes-validate has no Istio
CRDs), and the EnvoyFilter's Envoy config run through a real Envoy: the Wasm
config passes validate, and the scoping it sets up (filter disabled on the
listener, enabled on the Gemini virtual host, config over ECDS) routes Gemini
traffic through the filter and leaves other hosts alone."""

from __future__ import annotations

import copy
import http.client
import json
import subprocess
import tempfile
import time
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests import harness
from tests.deploy.artifacts import REPO

ISTIO = REPO / "deploy" / "istio"
SCHEMAS = REPO / "tests" / "deploy" / "schemas"
SCHEMA_FOR = {
    "EnvoyFilter": "envoyfilter",
    "ServiceEntry": "serviceentry",
    "DestinationRule": "destinationrule",
    "WasmPlugin": "wasmplugin",
}
GEMINI_HOST = "generativelanguage.googleapis.com"
WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
FILTER_SCHEMA = json.loads((REPO / "schema" / "config.schema.json").read_text())


def istio_docs() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(ISTIO.glob("*.yaml")):
        docs += [(f"{path.name}:{d['kind']}", d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def validator(kind: str) -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / f"{SCHEMA_FOR[kind]}.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def envoyfilter() -> dict:
    return next(d for _, d in istio_docs() if d["kind"] == "EnvoyFilter")


def patch_for(apply_to: str) -> dict:
    patches = [p for p in envoyfilter()["spec"]["configPatches"] if p["applyTo"] == apply_to]
    assert len(patches) == 1, f"expected one {apply_to} patch"
    return patches[0]


def test_every_istio_kind_is_shipped():
    assert {d["kind"] for _, d in istio_docs()} == set(SCHEMA_FOR)


@pytest.mark.parametrize("name, doc", istio_docs(), ids=[n for n, _ in istio_docs()])
def test_istio_resource_matches_its_api_schema(name, doc):
    errors = [f"{list(e.path)}: {e.message}" for e in validator(doc["kind"]).iter_errors(doc)]
    assert not errors, errors


@pytest.mark.parametrize(
    "mutate, kind",
    [
        (lambda d: d["spec"]["configPatches"][0]["patch"].update(operation="MERGE"), "EnvoyFilter"),
        (lambda d: d["spec"]["configPatches"][1]["match"].update(context="OUTBOUND"), "EnvoyFilter"),
        (lambda d: d["spec"]["configPatches"][2]["match"].update(cluster={"service": "x"}), "EnvoyFilter"),
        (lambda d: d["spec"].update(failStrategy="FAIL_SOMETIMES"), "WasmPlugin"),
        (lambda d: d["spec"].update(allowOnHeadersStopIteration=True), "WasmPlugin"),
        (lambda d: d["spec"]["ports"][0].update(protocol="HTTPS2"), "ServiceEntry"),
        (lambda d: d["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"].update(mode="ORIGINATE"), "DestinationRule"),
    ],
    ids=["extension-config-merge", "bad-context", "two-match-kinds", "bad-fail-strategy",
         "wasmplugin-has-no-stop-iteration-field", "bad-protocol", "bad-tls-mode"],
)
def test_schemas_refuse_mistakes(mutate, kind):
    doc = copy.deepcopy(next(d for _, d in istio_docs() if d["kind"] == kind))
    mutate(doc)
    assert list(validator(kind).iter_errors(doc)), "the schema accepted a broken resource"


def test_filter_configurations_match_the_filter_schema():
    wasm_config = patch_for("EXTENSION_CONFIG")["patch"]["value"]["typed_config"]["config"]
    plugin = next(d for _, d in istio_docs() if d["kind"] == "WasmPlugin")
    for config in (json.loads(wasm_config["configuration"]["value"]), plugin["spec"]["pluginConfig"]):
        errors = [e.message for e in jsonschema.Draft202012Validator(FILTER_SCHEMA).iter_errors(config)]
        assert not errors, errors


def test_envoyfilter_wires_the_pieces_together():
    extension = patch_for("EXTENSION_CONFIG")["patch"]["value"]
    http_filter = patch_for("HTTP_FILTER")
    vhost = patch_for("VIRTUAL_HOST")
    name = extension["name"]
    assert extension["typed_config"]["@type"] == WASM_TYPE
    assert extension["typed_config"]["config"]["allow_on_headers_stop_iteration"] is True
    assert http_filter["patch"]["value"]["name"] == name
    assert http_filter["patch"]["value"]["disabled"] is True
    assert http_filter["patch"]["value"]["config_discovery"]["type_urls"] == [WASM_TYPE]
    assert http_filter["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"] == "envoy.filters.http.router"
    assert http_filter["patch"]["operation"] == "INSERT_BEFORE"
    port = http_filter["match"]["listener"]["portNumber"]
    assert vhost["match"]["routeConfiguration"]["vhost"]["name"] == f"{GEMINI_HOST}:{port}"
    assert name in vhost["patch"]["value"]["typed_per_filter_config"]
    max_body = json.loads(extension["typed_config"]["config"]["configuration"]["value"]).get("max_body_bytes", 33554432)
    for apply_to in ("LISTENER", "CLUSTER"):
        assert patch_for(apply_to)["patch"]["value"]["per_connection_buffer_limit_bytes"] >= max_body
    assert patch_for("CLUSTER")["match"]["cluster"] == {"service": GEMINI_HOST, "portNumber": port}
    # The ServiceEntry must expose that port as plain HTTP for the filter to see it.
    entry = next(d for _, d in istio_docs() if d["kind"] == "ServiceEntry")
    assert GEMINI_HOST in entry["spec"]["hosts"]
    assert {"number": port, "protocol": "HTTP"}.items() <= next(p for p in entry["spec"]["ports"] if p["number"] == port).items()
    rule = next(d for _, d in istio_docs() if d["kind"] == "DestinationRule")
    tls = next(p for p in rule["spec"]["trafficPolicy"]["portLevelSettings"] if p["port"]["number"] == port)["tls"]
    assert tls["mode"] == "SIMPLE" and tls["sni"] == GEMINI_HOST


def local_wasm_config(wasm: Path) -> dict:
    """The EnvoyFilter's Wasm filter config with the remote module swapped for the
    local build (istio-agent does that swap in the mesh)."""
    typed = copy.deepcopy(patch_for("EXTENSION_CONFIG")["patch"]["value"]["typed_config"])
    code = typed["config"]["vm_config"]["code"]
    assert code["remote"]["http_uri"]["uri"].startswith(("oci://", "https://"))
    typed["config"]["vm_config"]["code"] = {"local": {"filename": str(wasm)}}
    return typed


def mesh_like_bootstrap(wasm: Path, ecds_path: Path) -> dict:
    """A sidecar-outbound-like Envoy built from the EnvoyFilter patches: the HTTP
    filter patch (config over ECDS, from a file instead of ADS), the virtual-host
    patch on the Gemini host, another host without it, and direct responses
    standing in for the upstreams."""
    http_filter = copy.deepcopy(patch_for("HTTP_FILTER")["patch"]["value"])
    http_filter["config_discovery"]["config_source"] = {
        "path_config_source": {"path": str(ecds_path)},
        "resource_api_version": "V3",
    }
    vhost_patch = patch_for("VIRTUAL_HOST")["patch"]["value"]
    port = patch_for("HTTP_FILTER")["match"]["listener"]["portNumber"]
    ecds_path.write_text(yaml.safe_dump({
        "version_info": "1",
        "resources": [{
            "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
            "name": http_filter["name"],
            "typed_config": local_wasm_config(wasm),
        }],
    }))

    def direct(body: str) -> list[dict]:
        return [{"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": body}}}]

    return {
        # xDS (here: ECDS from a file) needs a node identity, as a sidecar has.
        "node": {"id": "sidecar~127.0.0.1~app.ai~ai.svc.cluster.local", "cluster": "app.ai"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"listeners": [{
            "name": f"0.0.0.0_{port}",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
            "per_connection_buffer_limit_bytes": patch_for("LISTENER")["patch"]["value"]["per_connection_buffer_limit_bytes"],
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "outbound",
                    "route_config": {"name": str(port), "virtual_hosts": [
                        {"name": f"{GEMINI_HOST}:{port}", "domains": [GEMINI_HOST], "routes": direct("gemini-upstream"),
                         **vhost_patch},
                        {"name": "other:80", "domains": ["*"], "routes": direct("other-upstream")},
                    ]},
                    "http_filters": [http_filter, {
                        "name": "envoy.filters.http.router",
                        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
                    }],
                },
            }]}],
        }]},
    }


def test_envoyfilter_wasm_config_passes_envoy_validate(wasm, envoy_validate, tmp_path):
    code, output = envoy_validate(mesh_like_bootstrap(wasm, tmp_path / "ecds.yaml"))
    assert code == 0, output


def test_envoyfilter_scoping_runs_the_filter_on_the_gemini_host_only(wasm, tmp_path):
    """An invalid model id is refused by the filter (400) on the Gemini virtual
    host, and passes untouched to the other host's upstream."""
    bootstrap = tmp_path / "envoy.yaml"
    admin_file = tmp_path / "admin.txt"
    log = tmp_path / "envoy.log"
    bootstrap.write_text(yaml.safe_dump(mesh_like_bootstrap(wasm, tmp_path / "ecds.yaml"), sort_keys=False))
    with log.open("w") as log_file:
        proc = subprocess.Popen(
            [harness.envoy_bin(), "-c", str(bootstrap), "--base-id", str(harness._next_base_id()),
             "--admin-address-path", str(admin_file), "--log-level", "info"],
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    try:
        port = wait_for_listener(proc, admin_file, log)
        body = json.dumps({"model": "../x", "messages": [{"role": "user", "content": "hi"}]})
        answers = {}
        for host in (GEMINI_HOST, "other.example"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/v1beta/openai/chat/completions", body,
                         {"Host": host, "Content-Type": "application/json"})
            resp = conn.getresponse()
            answers[host] = (resp.status, resp.read().decode())
            conn.close()
        status, text = answers[GEMINI_HOST]
        assert status == 400, (answers, log.read_text()[-3000:])
        assert json.loads(text)["error"]["code"] == "invalid_model"
        assert answers["other.example"] == (200, "other-upstream"), answers
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for_listener(proc: subprocess.Popen, admin_file: Path, log: Path, timeout: float = 60.0) -> int:
    """Poll the admin API until Envoy is LIVE; return the listener's bound port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"envoy exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        admin = admin_file.read_text().strip() if admin_file.exists() else ""
        if admin:
            try:
                conn = http.client.HTTPConnection(admin, timeout=2)
                conn.request("GET", "/listeners?format=json")
                listeners = json.loads(conn.getresponse().read())
                conn.request("GET", "/ready")
                ready = conn.getresponse()
                live = ready.status == 200 and ready.read().strip() == b"LIVE"
                conn.close()
                if live:
                    return listeners["listener_statuses"][0]["local_address"]["socket_address"]["port_value"]
            except (OSError, ValueError, KeyError, http.client.HTTPException):
                pass
        time.sleep(0.1)
    pytest.fail(f"envoy not ready after {timeout}s:\n{log.read_text()[-4000:]}")
