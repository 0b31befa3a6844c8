"""The shipped Envoy configs (deploy/envoy/) pass `envoy --mode validate` with the
built module, and render.py produces the variants `make run`, `make demo` and the
tests use."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy.artifacts import REPO, run, wasm_filter

ENVOY_DIR = REPO / "deploy" / "envoy"
RENDER = ENVOY_DIR / "render.py"
TEMPLATES = ["envoy.yaml", "envoy-vertex.yaml"]
DEFAULT_MAX_BODY = 33554432


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
def test_template_with_only_the_placeholder_replaced_validates(template, wasm, envoy_validate):
    """The documented sed one-liner works too: __WASM__ is the only thing to fill in."""
    text = (ENVOY_DIR / template).read_text()
    config_lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert sum(line.count("__WASM__") for line in config_lines) == 1
    code, output = envoy_validate(text.replace("__WASM__", str(wasm)))
    assert code == 0, output


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
