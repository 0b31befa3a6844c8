"""The Envoy Gateway recipe (deploy/envoy-gateway/): every resource against
structural schemas derived from the CRDs of Envoy Gateway v1.9.0 and Gateway
API v1.6.1 (tests/deploy/schemas/), the CEL rules of those CRDs that the
recipe relies on, the wiring between the resources (the chart's egress Service
as the backend of variant 1; the Wasm extension, its route and the patch of
variant 2), and the EnvoyPatchPolicy applied, the way Envoy Gateway applies
it, to the listener Envoy Gateway generates for the EnvoyExtensionPolicy: the
patched Wasm filter carries allow_on_headers_stop_iteration, passes
`envoy --mode validate`, and runs the filter on the route."""

from __future__ import annotations

import copy
import http.client
import json
import re
import subprocess

import jsonschema
import pytest
import yaml

from tests import harness
from tests.deploy.artifacts import REPO, find, parse_manifests, run
from tests.deploy.test_istio import EXAMPLE_DIGEST, FILTER_SCHEMA, GEMINI_HOST, WASM_TYPE, wait_for_listener

EG = REPO / "deploy" / "envoy-gateway"
SCHEMAS = REPO / "tests" / "deploy" / "schemas"
SCHEMA_FOR = {
    "Gateway": "gatewayapi-gateway",
    "HTTPRoute": "httproute",
    "Backend": "backend",
    "ClientTrafficPolicy": "clienttrafficpolicy",
    "BackendTrafficPolicy": "backendtrafficpolicy",
    "EnvoyExtensionPolicy": "envoyextensionpolicy",
    "EnvoyPatchPolicy": "envoypatchpolicy",
}
GATEWAY_API = "gateway.networking.k8s.io"
LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener"
HCM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
MAX_BODY = 33554432


def docs(sub: str = "") -> list[tuple[str, dict]]:
    out = []
    for path in sorted((EG / sub).rglob("*.yaml")):
        name = str(path.relative_to(EG))
        out += [(f"{name}:{d['kind']}", d) for d in yaml.safe_load_all(path.read_text()) if d]
    return out


def one(kind: str, sub: str) -> dict:
    found = [d for _, d in docs(sub) if d["kind"] == kind]
    assert len(found) == 1, (kind, sub)
    return found[0]


def validator(kind: str) -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / f"{SCHEMA_FOR[kind]}.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def quantity(value: str | int) -> int:
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", str(value))
    assert match, value
    return int(match[1]) * units.get(match[2] or "", 1)


def test_every_kind_is_shipped_with_a_schema():
    assert {d["kind"] for _, d in docs()} == set(SCHEMA_FOR)


@pytest.mark.parametrize("name, doc", docs(), ids=[n for n, _ in docs()])
def test_resource_matches_its_crd_schema(name, doc):
    errors = [f"{list(e.path)}: {e.message}" for e in validator(doc["kind"]).iter_errors(doc)]
    assert not errors, errors


@pytest.mark.parametrize(
    "sub, kind, mutate",
    [
        ("in-gateway", "EnvoyExtensionPolicy", lambda d: d["spec"]["wasm"][0].update(allowOnHeadersStopIteration=True)),
        ("in-gateway", "EnvoyExtensionPolicy", lambda d: d["spec"]["wasm"][0]["code"].update(type="OCI")),
        ("in-gateway", "EnvoyPatchPolicy", lambda d: d["spec"]["jsonPatches"][0]["operation"].update(op="merge")),
        ("in-gateway", "EnvoyPatchPolicy", lambda d: d["spec"]["jsonPatches"][0].update(type="type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm")),
        ("in-gateway", "EnvoyPatchPolicy", lambda d: d["spec"].update(type="StrategicMerge")),
        ("in-gateway", "ClientTrafficPolicy", lambda d: d["spec"]["connection"].update(bufferLimit={"value": "64Mi"})),
        ("in-gateway", "Backend", lambda d: d["spec"]["tls"].update(wellKnownCACertificates="system")),
        ("egress-service", "HTTPRoute", lambda d: d["spec"]["rules"][0]["timeouts"].update(request="10min")),
        ("egress-service", "HTTPRoute", lambda d: d["spec"]["rules"][0]["backendRefs"][0].update(port="http")),
        ("", "Gateway", lambda d: d["spec"]["listeners"][0].update(protocol="HTTP 1.1")),
    ],
    ids=["eep-has-no-stop-iteration-field", "bad-code-type", "bad-patch-op", "patch-type-not-an-xds-resource",
         "bad-policy-type", "buffer-limit-not-a-quantity", "bad-ca-name", "bad-duration", "port-not-a-number", "bad-protocol"],
)
def test_schemas_refuse_mistakes(sub, kind, mutate):
    doc = copy.deepcopy(one(kind, sub) if sub else next(d for _, d in docs() if d["kind"] == kind))
    mutate(doc)
    assert list(validator(kind).iter_errors(doc)), "the schema accepted a broken resource"


def test_cel_rules_the_recipe_relies_on():
    """The CRDs' x-kubernetes-validations, which a JSON schema cannot express."""
    eep = one("EnvoyExtensionPolicy", "in-gateway")["spec"]
    for wasm in eep["wasm"]:
        assert (wasm["code"]["type"] == "Image") == ("image" in wasm["code"]) and "http" not in wasm["code"]
    for spec, kinds in ((eep, {"Gateway", "HTTPRoute"}), (one("BackendTrafficPolicy", "in-gateway")["spec"], {"Gateway", "HTTPRoute"}),
                        (one("ClientTrafficPolicy", "in-gateway")["spec"], {"Gateway"})):
        assert all(r["group"] == GATEWAY_API and r["kind"] in kinds for r in spec["targetRefs"]) and "targetRef" not in spec
    for _, route in docs():
        if route["kind"] != "HTTPRoute":
            continue
        for rule in route["spec"]["rules"]:
            for ref in rule["backendRefs"]:
                if ref.get("group", "") == "" and ref.get("kind", "Service") == "Service":
                    assert "port" in ref
            assert [f["type"] for f in rule.get("filters", [])].count("URLRewrite") <= 1
            assert int(rule["timeouts"]["request"].rstrip("s")) >= 600
    backend = one("Backend", "in-gateway")["spec"]
    assert all("fqdn" in e for e in backend["endpoints"])


def test_egress_service_route_points_at_the_charts_service(helm):
    """Variant 1: `helm install gemini-router ... -n ai` (egress mode) makes the
    Service the route names, on the port it names."""
    proc = run([helm, "template", "gemini-router", str(REPO / "deploy" / "helm" / "gemini-router"), "--namespace", "ai"])
    assert proc.returncode == 0, proc.stderr
    service = find(parse_manifests(proc.stdout), "Service")
    route = one("HTTPRoute", "egress-service")
    gateway = one("Gateway", "")
    ref = route["spec"]["rules"][0]["backendRefs"][0]
    assert ref["name"] == service["metadata"]["name"] == "gemini-router"
    assert ref["port"] in [p["port"] for p in service["spec"]["ports"] if p["name"] == "http"]
    assert route["metadata"]["namespace"] == gateway["metadata"]["namespace"] == "ai"


@pytest.mark.parametrize("sub", ["egress-service", "in-gateway"])
def test_routes_attach_to_the_gateway_listener(sub):
    gateway = one("Gateway", "")
    route = one("HTTPRoute", sub)
    parent = route["spec"]["parentRefs"][0]
    assert parent["name"] == gateway["metadata"]["name"]
    assert parent["sectionName"] in [l["name"] for l in gateway["spec"]["listeners"]]


def filter_name(eep: dict, index: int = 0) -> str:
    """The HTTP filter Envoy Gateway generates for a Wasm extension (v1.9.0:
    internal/gatewayapi irConfigNameForWasm, internal/xds/translator wasmFilterName)."""
    return f"envoy.filters.http.wasm/envoyextensionpolicy/{eep['metadata']['namespace']}/{eep['metadata']['name']}/wasm/{index}"


def test_in_gateway_variant_wires_the_pieces_together():
    gateway = one("Gateway", "")
    route = one("HTTPRoute", "in-gateway")
    eep = one("EnvoyExtensionPolicy", "in-gateway")
    epp = one("EnvoyPatchPolicy", "in-gateway")
    backend = one("Backend", "in-gateway")
    route_ref = {"group": GATEWAY_API, "kind": "HTTPRoute", "name": route["metadata"]["name"]}
    assert eep["spec"]["targetRefs"] == [route_ref]
    assert one("BackendTrafficPolicy", "in-gateway")["spec"]["targetRefs"] == [route_ref]
    gateway_ref = {"group": GATEWAY_API, "kind": "Gateway", "name": gateway["metadata"]["name"]}
    assert one("ClientTrafficPolicy", "in-gateway")["spec"]["targetRefs"] == [gateway_ref]
    # An EnvoyPatchPolicy acts only on a Gateway in its own namespace.
    assert epp["spec"]["targetRef"] == gateway_ref
    assert {d["metadata"]["namespace"] for _, d in docs()} == {"ai"}
    listener = f"ai/{gateway['metadata']['name']}/{route['spec']['parentRefs'][0]['sectionName']}"
    for patch in epp["spec"]["jsonPatches"]:
        assert patch["type"] == LISTENER_TYPE and patch["name"] == listener
        assert f"@.name=='{filter_name(eep)}'" in patch["operation"]["jsonPath"]
    ref = route["spec"]["rules"][0]["backendRefs"][0]
    assert (ref["group"], ref["kind"], ref["name"]) == ("gateway.envoyproxy.io", "Backend", backend["metadata"]["name"])
    assert backend["spec"]["endpoints"][0]["fqdn"] == {"hostname": GEMINI_HOST, "port": ref["port"]}
    assert backend["spec"]["tls"]["sni"] == GEMINI_HOST and backend["spec"]["tls"]["wellKnownCACertificates"] == "System"
    assert route["spec"]["rules"][0]["filters"][0]["urlRewrite"]["hostname"] == GEMINI_HOST
    config = eep["spec"]["wasm"][0]["config"]
    assert not [e.message for e in jsonschema.Draft202012Validator(FILTER_SCHEMA).iter_errors(config)]
    for kind in ("ClientTrafficPolicy", "BackendTrafficPolicy"):
        assert quantity(one(kind, "in-gateway")["spec"]["connection"]["bufferLimit"]) >= config.get("max_body_bytes", MAX_BODY)


def test_module_is_pinned_by_digest_once_the_placeholders_are_filled():
    text = (EG / "in-gateway" / "wasm.yaml").read_text()
    assert "REGISTRY/gemini-router-wasm@sha256:DIGEST" in text
    pinned = [d for d in yaml.safe_load_all(text.replace("REGISTRY", "ghcr.io/acme").replace("DIGEST", EXAMPLE_DIGEST)) if d]
    eep = next(d for d in pinned if d["kind"] == "EnvoyExtensionPolicy")
    assert not list(validator("EnvoyExtensionPolicy").iter_errors(eep))
    image = eep["spec"]["wasm"][0]["code"]["image"]
    assert image["url"] == f"ghcr.io/acme/gemini-router-wasm@sha256:{EXAMPLE_DIGEST}"
    assert image["sha256"] == EXAMPLE_DIGEST


# --- The patch applied as Envoy Gateway applies it -------------------------

def json_path(doc, expr: str) -> list[str]:
    """JSON pointers for the subset of JSONPath the recipe uses: `$`, `..key`,
    `.key` and `[?(@.key=='value')]` (Envoy Gateway evaluates it with ojg)."""
    parts = re.findall(r"\$|\.\.\w+|\.\w+|\[\?\(@\.\w+=='[^']*'\)\]", expr)
    assert "".join(parts) == expr, f"unsupported JSONPath {expr!r}"
    nodes = [("", doc)]
    for part in parts:
        if part == "$":
            continue
        found = []
        if part.startswith(".."):
            key = part[2:]

            def walk(ptr, node):
                if isinstance(node, dict):
                    for k, v in node.items():
                        if k == key:
                            found.append((f"{ptr}/{k}", v))
                        walk(f"{ptr}/{k}", v)
                elif isinstance(node, list):
                    for i, v in enumerate(node):
                        walk(f"{ptr}/{i}", v)
            for ptr, node in nodes:
                walk(ptr, node)
        elif part.startswith("."):
            found = [(f"{p}/{part[1:]}", n[part[1:]]) for p, n in nodes if isinstance(n, dict) and part[1:] in n]
        else:
            key, value = re.fullmatch(r"\[\?\(@\.(\w+)=='([^']*)'\)\]", part).groups()
            found = [(f"{p}/{i}", v) for p, n in nodes if isinstance(n, list)
                     for i, v in enumerate(n) if isinstance(v, dict) and v.get(key) == value]
        nodes = found
    return [p for p, _ in nodes]


def apply_operation(doc: dict, operation: dict) -> dict:
    """One EnvoyPatchPolicy operation (add/replace), jsonPath then path appended,
    parents created on add (Envoy Gateway's EnsurePathExistsOnAdd)."""
    pointers = [p + operation.get("path", "") for p in json_path(doc, operation["jsonPath"])]
    assert pointers, f"no match for {operation['jsonPath']}: Envoy Gateway reports the policy as failed"
    for pointer in pointers:
        *parents, last = pointer.split("/")[1:]
        node = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        assert operation["op"] in ("add", "replace")
        node[last] = operation["value"]
    return doc


def eg_listener(eep: dict, listener_name: str) -> dict:
    """The listener Envoy Gateway v1.9.0 generates for an HTTP Gateway listener
    with the EnvoyExtensionPolicy on its route, as protojson with proto names
    (what the JSON patch sees): the Wasm filter on the HCM, disabled, with the
    module served by Envoy Gateway's own HTTP server, enabled on the route by
    an empty FilterConfig, then the router. The route answers directly in
    place of Google."""
    wasm = eep["spec"]["wasm"][0]
    name = filter_name(eep)
    return {
        "name": listener_name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "per_connection_buffer_limit_bytes": MAX_BODY * 2,
        "default_filter_chain": {"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": HCM_TYPE,
                "stat_prefix": "http-10080",
                "route_config": {"name": listener_name, "virtual_hosts": [{
                    "name": f"{listener_name}/*", "domains": ["*"],
                    "routes": [{
                        "name": "httproute/ai/gemini-router/rule/0/match/0/*",
                        "match": {"prefix": "/v1beta"},
                        "direct_response": {"status": 200, "body": {"inline_string": "gemini-upstream"}},
                        # Envoy Gateway enables the filter with an empty Any as its config.
                        "typed_per_filter_config": {name: {"@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "config": {}}},
                    }],
                }]},
                "http_filters": [
                    {"name": name, "disabled": True, "typed_config": {"@type": WASM_TYPE, "config": {
                        "name": wasm["name"],
                        "root_id": wasm["rootID"],
                        "vm_config": {
                            "vm_id": name.split("/", 1)[1],
                            "runtime": "envoy.wasm.runtime.v8",
                            "code": {"remote": {
                                "http_uri": {"uri": "https://envoy-gateway:18002/ai/gemini-router/wasm/0.wasm",
                                             "cluster": "wasm_cluster", "timeout": "10s"},
                                "sha256": "0" * 64,
                                "retry_policy": {"num_retries": 10, "retry_back_off": {"base_interval": "1s", "max_interval": "30s"}},
                            }},
                        },
                        "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                          "value": json.dumps(wasm["config"])},
                    }}},
                    {"name": "envoy.filters.http.router",
                     "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
                ],
            },
        }]},
    }


def patched_bootstrap(wasm) -> tuple[dict, dict]:
    eep = one("EnvoyExtensionPolicy", "in-gateway")
    epp = one("EnvoyPatchPolicy", "in-gateway")
    name = epp["spec"]["jsonPatches"][0]["name"]
    listener = eg_listener(eep, name)
    for patch in epp["spec"]["jsonPatches"]:
        assert patch["name"] == listener["name"]
        apply_operation(listener, patch["operation"])
    wasm_filter = listener["default_filter_chain"]["filters"][0]["typed_config"]["http_filters"][0]
    config = wasm_filter["typed_config"]["config"]
    # Envoy Gateway's Envoy fetches the module from Envoy Gateway; here, the build.
    config["vm_config"]["code"] = {"local": {"filename": str(wasm)}}
    bootstrap = {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"listeners": [listener]},
    }
    return bootstrap, config


def test_patch_sets_the_flag_on_the_generated_wasm_filter(wasm):
    before = eg_listener(one("EnvoyExtensionPolicy", "in-gateway"), "ai/gemini-egress/http")
    assert "allow_on_headers_stop_iteration" not in json.dumps(before)
    _, config = patched_bootstrap(wasm)
    assert config["allow_on_headers_stop_iteration"] is True
    assert config["failure_policy"] == "FAIL_RELOAD"


def test_patched_listener_passes_envoy_validate(wasm, envoy_validate):
    bootstrap, _ = patched_bootstrap(wasm)
    code, output = envoy_validate(bootstrap)
    assert code == 0, output


def test_patched_listener_runs_the_filter_on_the_route(wasm, tmp_path):
    """An invalid model id is refused by the filter itself (400 invalid_model):
    it read the body after pausing the headers, which is what the flag allows."""
    bootstrap, _ = patched_bootstrap(wasm)
    path, admin_file, log = tmp_path / "envoy.yaml", tmp_path / "admin.txt", tmp_path / "envoy.log"
    path.write_text(yaml.safe_dump(bootstrap, sort_keys=False))
    with log.open("w") as log_file:
        proc = subprocess.Popen(
            [harness.envoy_bin(), "-c", str(path), "--base-id", str(harness._next_base_id()),
             "--admin-address-path", str(admin_file), "--log-level", "info", "--concurrency", "1"],
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    try:
        port = wait_for_listener(proc, admin_file, log)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/v1beta/openai/chat/completions",
                     json.dumps({"model": "../x", "messages": [{"role": "user", "content": "hi"}]}),
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        status, text = resp.status, resp.read().decode()
        conn.close()
        assert status == 400, (status, text, log.read_text()[-3000:])
        assert json.loads(text)["error"]["code"] == "invalid_model"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
