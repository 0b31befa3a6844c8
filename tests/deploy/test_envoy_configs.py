"""The shipped Envoy configs (deploy/envoy/) pass `envoy --mode validate` with the
built module at their module path, one runs for real in front of the emulator,
and render.py produces the variants `make run`, `make demo` and the tests use by
editing YAML fields."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from tests import harness
from tests.deploy.artifacts import REPO, RunningEnvoy, check_accept_encoding_pair, run, wasm_filter

ENVOY_DIR = REPO / "deploy" / "envoy"
RENDER = ENVOY_DIR / "render.py"
TEMPLATES = ["envoy.yaml", "envoy-vertex.yaml"]
DEFAULT_MAX_BODY = 33554432
# Where the shipped configs load the module (the container example mounts it there).
MODULE_PATH = "/etc/envoy/gemini_router.wasm"


def render(wasm: Path, *args: str) -> str:
    proc = run([sys.executable, str(RENDER), "--wasm", str(wasm), *args])
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def listener_and_cluster(config: dict) -> tuple[dict, dict]:
    static = config["static_resources"]
    return static["listeners"][0], next(c for c in static["clusters"] if c["name"] == "gemini")


@pytest.mark.parametrize("template", TEMPLATES)
def test_template_validates_with_the_built_module(template, wasm, envoy_validate):
    code, output = envoy_validate(render(wasm, "--template", str(ENVOY_DIR / template)))
    assert code == 0, output


@pytest.mark.parametrize("template", TEMPLATES)
def test_shipped_config_validates_with_the_module_at_its_path(template, wasm, envoy_validate):
    """The file as shipped, with the module where it says: only the module path
    field differs (the test cannot write /etc/envoy), nothing else is rendered."""
    config = yaml.safe_load((ENVOY_DIR / template).read_text())
    code = wasm_filter(config)["vm_config"]["code"]
    assert code == {"local": {"filename": MODULE_PATH}}
    assert "__WASM__" not in (ENVOY_DIR / template).read_text()
    code["local"]["filename"] = str(wasm)
    status, output = envoy_validate(config)
    assert status == 0, output


def test_shipped_config_runs_in_front_of_the_emulator(wasm, emulator, tmp_path):
    """envoy.yaml started for real with the filter, listening on [::] (IPv6 and
    IPv4), upstream the emulator: an OpenAI chat for a shut-down Imagen model
    reaches the emulator at its replacement's :generateContent endpoint."""
    text = render(wasm, "--upstream", emulator.url, "--listen", "[::]:0", "--admin", "127.0.0.1:0")
    with RunningEnvoy(yaml.safe_load(text), tmp_path) as envoy:
        url = f"http://127.0.0.1:{envoy.port('gemini')}"
        body = {"model": "imagen-4.0-generate-001", "messages": [{"role": "user", "content": "a lighthouse"}]}
        resp = harness.http_request(url, "POST", "/v1beta/openai/chat/completions", json_body=body,
                                    headers=harness.OPENAI_AUTH)
        assert resp.status == 200, (resp, envoy.log_tail())
        # Imagen 4 is shut down (December 2026): its replacement serves it.
        assert harness.only_request(emulator)["path"] == "/v1beta/models/gemini-3.1-flash-image:generateContent"
        assert int(envoy.stats()["wasmcustom.gemini_router.migrated.imagen"]) == 1
        # The key reached the upstream but never the access log.
        assert harness.API_KEY not in envoy.log_tail(100000)


def test_plaintext_emulator_variant_validates(wasm, envoy_validate):
    """What `make demo` and the tests render: emulator over plain HTTP, other ports, a filter config."""
    text = render(wasm, "--upstream", "http://127.0.0.1:8089", "--listen", "127.0.0.1:18000",
                  "--admin", "127.0.0.1:0", "--config", '{"api_style":"openai","openai_images_families":["imagen"]}')
    config = yaml.safe_load(text)
    listener, cluster = listener_and_cluster(config)
    assert "transport_socket" not in cluster
    assert listener["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 18000}
    assert json.loads(wasm_filter(config)["configuration"]["value"])["api_style"] == "openai"
    code, output = envoy_validate(text)
    assert code == 0, output


def test_tls_upstream_is_rendered_with_matching_sni_and_san(wasm, envoy_validate):
    text = render(wasm, "--template", str(ENVOY_DIR / "envoy-vertex.yaml"),
                  "--upstream", "https://europe-west4-aiplatform.googleapis.com",
                  "--config", '{"api_style":"vertex","vertex":{"project":"p","location":"europe-west4"}}')
    _, cluster = listener_and_cluster(yaml.safe_load(text))
    tls = cluster["transport_socket"]["typed_config"]
    host = "europe-west4-aiplatform.googleapis.com"
    assert tls["sni"] == host
    assert tls["common_tls_context"]["validation_context"]["match_typed_subject_alt_names"][0]["matcher"] == {"exact": host}
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert endpoint == {"address": host, "port_value": 443}
    code, output = envoy_validate(text)
    assert code == 0, output


@pytest.mark.parametrize("bad", ['{"nope":1}', '{"api_style":"vertex"}', '{"max_body_bytes":0}'])
def test_bad_filter_configuration_is_refused_by_validate(bad, wasm, envoy_validate):
    code, output = envoy_validate(render(wasm, "--config", bad))
    assert code != 0, f"envoy accepted filter configuration {bad}:\n{output}"
    assert "gemini_router" in output, output


def test_unknown_field_is_named_in_the_log(wasm, envoy_validate):
    code, output = envoy_validate(render(wasm, "--config", '{"nope":1}'))
    assert code != 0
    assert "nope" in output, output


@pytest.mark.parametrize("template", TEMPLATES)
def test_template_settings_the_filter_depends_on(template):
    config = yaml.safe_load((ENVOY_DIR / template).read_text())
    listener, cluster = listener_and_cluster(config)
    plugin = wasm_filter(config)
    filter_config = json.loads(plugin["configuration"]["value"])
    max_body = filter_config.get("max_body_bytes", DEFAULT_MAX_BODY)
    assert plugin["allow_on_headers_stop_iteration"] is True
    assert plugin["failure_policy"] in {"FAIL_RELOAD", "FAIL_CLOSED", "FAIL_OPEN"}
    assert listener["per_connection_buffer_limit_bytes"] >= max_body
    assert cluster["per_connection_buffer_limit_bytes"] >= max_body
    assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    assert listener["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 10000}
    assert plugin["vm_config"]["code"]["local"]["filename"] == MODULE_PATH
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    route = hcm["route_config"]["virtual_hosts"][0]["routes"][0]["route"]
    assert route["auto_host_rewrite"] is True
    assert int(route["timeout"].rstrip("s")) >= 300
    tls = cluster["transport_socket"]["typed_config"]
    host = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert host["port_value"] == 443 and tls["sni"] == host["address"]
    assert tls["common_tls_context"]["validation_context"]["trusted_ca"]["filename"] == "/etc/ssl/certs/ca-certificates.crt"
    # Native clients may send ?key=API_KEY: the access log must not print the query.
    log_format = hcm["access_log"][0]["typed_config"]["log_format"]["text_format_source"]["inline_string"]
    assert "%PATH(WQ" in log_format and "%REQ(:PATH)%" not in log_format
    check_accept_encoding_pair(config)


@pytest.mark.parametrize("args", [
    [],
    ["--config", '{"api_style":"openai"}'],
    ["--config", "{}", "--no-skip-unrouted"],
    ["--template", str(ENVOY_DIR / "envoy-vertex.yaml"), "--config",
     '{"api_style":"vertex","vertex":{"project":"p","location":"l"}}'],
], ids=["as shipped", "a configuration without the field", "every request through the filter", "vertex"])
def test_rendered_configs_keep_the_route_and_the_filter_agreeing_on_accept_encoding(args, tmp_path):
    """The filter leaves accept-encoding to the route only where the route
    removes it; a configuration given to render.py gets the field."""
    config = yaml.safe_load(render(tmp_path / "m.wasm", *args))
    check_accept_encoding_pair(config)


def test_render_keeps_an_explicit_route_removes_accept_encoding(tmp_path):
    config = yaml.safe_load(render(tmp_path / "m.wasm", "--config", '{"route_removes_accept_encoding":false}'))
    assert json.loads(wasm_filter(config)["configuration"]["value"]) == {"route_removes_accept_encoding": False}


def test_vertex_template_differs_only_in_upstream_and_filter_configuration():
    """envoy-vertex.yaml is a copy of envoy.yaml; this keeps them from drifting apart."""
    native = yaml.safe_load((ENVOY_DIR / "envoy.yaml").read_text())
    vertex = yaml.safe_load((ENVOY_DIR / "envoy-vertex.yaml").read_text())
    vertex_config = json.loads(wasm_filter(vertex)["configuration"]["value"])
    assert vertex_config["api_style"] == "vertex"
    assert set(vertex_config["vertex"]) >= {"project", "location"}
    host = f'{vertex_config["vertex"]["location"]}-aiplatform.googleapis.com'
    normalised = json.loads(
        json.dumps(vertex).replace(host, "generativelanguage.googleapis.com")
    )
    wasm_filter(normalised)["configuration"]["value"] = wasm_filter(native)["configuration"]["value"]
    assert normalised == native


@pytest.mark.parametrize(
    "args, message",
    [
        (["--upstream", "ftp://example.com"], "--upstream"),
        (["--upstream", "https://example.com/v1"], "only scheme, host and port"),
        (["--listen", "10000"], "HOST:PORT"),
        (["--config", "{not json"], "not JSON"),
        (["--ca-file", "/x", "--upstream", "http://127.0.0.1:1"], "TLS upstream"),
    ],
)
def test_render_refuses_bad_arguments(args, message, tmp_path):
    proc = run([sys.executable, str(RENDER), "--wasm", str(tmp_path / "x.wasm"), *args])
    assert proc.returncode == 2, proc.stdout
    assert message in proc.stderr, proc.stderr


def test_render_writes_the_absolute_module_path(tmp_path):
    out = tmp_path / "envoy.yaml"
    proc = run([sys.executable, str(RENDER), "--wasm", "target/x.wasm", "--out", str(out)], cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    filename = wasm_filter(yaml.safe_load(out.read_text()))["vm_config"]["code"]["local"]["filename"]
    assert filename == str(REPO / "target" / "x.wasm")
    assert re.match(r"# Rendered from envoy.yaml", out.read_text())


def test_render_without_wasm_keeps_the_module_path_and_edits_fields(tmp_path):
    """No --wasm: the module stays at its default path (the container case); the
    [::] listener gets ipv4_compat so IPv4 clients are served too."""
    proc = run([sys.executable, str(RENDER), "--listen", "[::]:10000"])
    assert proc.returncode == 0, proc.stderr
    config = yaml.safe_load(proc.stdout)
    assert wasm_filter(config)["vm_config"]["code"]["local"]["filename"] == MODULE_PATH
    assert config["static_resources"]["listeners"][0]["address"]["socket_address"] == {
        "address": "::", "port_value": 10000, "ipv4_compat": True}


def test_render_refuses_a_template_without_a_local_module(tmp_path):
    config = yaml.safe_load((ENVOY_DIR / "envoy.yaml").read_text())
    wasm_filter(config)["vm_config"]["code"] = {"remote": {"http_uri": {"uri": "https://x", "cluster": "x", "timeout": "1s"}}}
    template = tmp_path / "t.yaml"
    template.write_text(yaml.safe_dump(config))
    proc = run([sys.executable, str(RENDER), "--template", str(template), "--wasm", "/x.wasm"])
    assert proc.returncode == 2 and "local module" in proc.stderr, proc.stderr
