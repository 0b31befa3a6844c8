"""Requests the filter never routes (every method but POST, src/request.rs) do
not reach it in the shipped configs: a first route with the same action
disables the Wasm filter for them (deploy/envoy/*.yaml; the chart's
`envoy.skipUnrouted`, on by default). Checked in the files, and on the newest
and the oldest supported Envoy running them in front of the emulator: a GET
passes without the filter (its counters do not move), a routed POST is routed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from tests import harness
from tests.deploy.artifacts import CI_VALUES, REPO, RunningEnvoy, chart_envoy_config, parse_manifests, run

ENVOY_DIR = REPO / "deploy" / "envoy"
TEMPLATES = ["envoy.yaml", "envoy-vertex.yaml"]
EGRESS_VALUES = next(p for p in CI_VALUES if p.stem == "egress")
CHAT = "/v1beta/openai/chat/completions"
IMAGEN_CHAT = {"model": "imagen-4.0-generate-001", "messages": [{"role": "user", "content": "a lighthouse"}]}


def hcm(config: dict) -> dict:
    listener = next(l for l in config["static_resources"]["listeners"] if l["name"] == "gemini")
    return listener["filter_chains"][0]["filters"][0]["typed_config"]


def routes(config: dict) -> list[dict]:
    (host,) = hcm(config)["route_config"]["virtual_hosts"]
    return host["routes"]


def render(*args: str) -> dict:
    proc = run([sys.executable, str(ENVOY_DIR / "render.py"), *args])
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


def chart_config(helm_template, wasm: Path, *args: str) -> dict:
    proc = helm_template("-f", str(EGRESS_VALUES), *args)
    assert proc.returncode == 0, proc.stderr
    return chart_envoy_config(parse_manifests(proc.stdout), wasm)


def shipped_configs(helm_template, wasm: Path) -> dict[str, dict]:
    configs = {name: yaml.safe_load((ENVOY_DIR / name).read_text()) for name in TEMPLATES}
    configs["chart"] = chart_config(helm_template, wasm)
    return configs


def test_the_skip_route_comes_first_and_differs_from_the_api_route_only_in_the_filter(helm_template, wasm):
    """What the harness's "route" mode does (tests/harness.py), so the integration
    suite run with GEMINI_ROUTER_SKIP_UNROUTED=route tests this shape."""
    for name, config in shipped_configs(helm_template, wasm).items():
        skip, api = routes(config)
        assert skip["match"] == {"prefix": "/", "headers": [harness.NOT_POST]}, name
        assert api["match"] == {"prefix": "/"}, name
        assert skip["route"] == api["route"], f"{name}: the two routes must forward alike"
        # The filter's `upstream` option does not reach skipped requests: the
        # route sets the upstream's Host itself, for both routes alike.
        assert skip["route"].get("auto_host_rewrite") is True or "host_rewrite_literal" in skip["route"], name
        # The key names the Wasm filter as http_filters does (a wrong name would
        # disable nothing, or refuse the config).
        wasm_names = [f["name"] for f in hcm(config)["http_filters"]
                      if f["typed_config"]["@type"].endswith("filters.http.wasm.v3.Wasm")]
        assert wasm_names == [harness.WASM_FILTER_NAME], name
        assert skip["typed_per_filter_config"] == {harness.WASM_FILTER_NAME: harness.FILTER_DISABLED}, name
        assert "typed_per_filter_config" not in api, name


@pytest.mark.parametrize("template", TEMPLATES)
def test_render_without_the_skip_route(template, wasm, envoy_validate):
    shipped = yaml.safe_load((ENVOY_DIR / template).read_text())
    config = render("--template", str(ENVOY_DIR / template), "--wasm", str(wasm), "--no-skip-unrouted")
    assert routes(config) == routes(shipped)[1:]
    code, output = envoy_validate(config)
    assert code == 0, output


def test_chart_value_turns_the_skip_route_off(helm_template, wasm):
    on = chart_config(helm_template, wasm)
    off = chart_config(helm_template, wasm, "--set", "envoy.skipUnrouted=false")
    assert len(routes(on)) == 2
    assert routes(off) == routes(on)[1:]


def rendered_for_emulator(source: str, emulator, helm_template, wasm: Path, skip: bool) -> dict:
    if source == "envoy.yaml":
        return render("--wasm", str(wasm), "--upstream", emulator.url, "--listen", "127.0.0.1:0",
                      "--admin", "127.0.0.1:0", *([] if skip else ["--no-skip-unrouted"]))
    config = chart_config(helm_template, wasm,
                          "--set", f"upstream.host=127.0.0.1,upstream.port={emulator.port},upstream.tls=false",
                          "--set", f"envoy.skipUnrouted={str(skip).lower()}")
    # The chart's ports are fixed values; let the kernel pick them here.
    for listener in config["static_resources"]["listeners"]:
        listener["address"]["socket_address"].update(address="127.0.0.1", port_value=0)
        listener["address"]["socket_address"].pop("ipv4_compat", None)
    config["admin"]["address"]["socket_address"]["port_value"] = 0
    return config


def counters(envoy: RunningEnvoy) -> dict[str, int]:
    prefix = "wasmcustom.gemini_router."
    return {k.removeprefix(prefix): int(v) for k, v in envoy.stats().items() if k.startswith(prefix) and v != "0"}


@pytest.fixture(params=["newest", "oldest"])
def envoy_bin(request) -> str:
    return harness.envoy_bin() if request.param == "newest" else request.getfixturevalue("old_envoy")


@pytest.mark.parametrize("source", ["envoy.yaml", "chart"])
def test_a_get_passes_without_the_filter_and_a_post_is_routed(source, envoy_bin, emulator, helm_template, wasm,
                                                              tmp_path):
    config = rendered_for_emulator(source, emulator, helm_template, wasm, skip=True)
    with RunningEnvoy(config, tmp_path, envoy=envoy_bin) as envoy:
        url = f"http://127.0.0.1:{envoy.port('gemini')}"
        # The model list, and a routed path that is not a POST.
        for target, auth in (("/v1beta/models", harness.NATIVE_AUTH), (CHAT, harness.OPENAI_AUTH)):
            resp = harness.http_request(url, "GET", target, headers=auth)
            direct = harness.http_request(emulator.url, "GET", target, headers=auth)
            assert (resp.status, resp.body) == (direct.status, direct.body), resp
            harness.assert_no_diagnostics(resp)
        assert counters(envoy) == {}, "the filter saw a GET"
        gets = emulator.requests()
        assert [r["target"] for r in gets] == ["/v1beta/models"] * 2 + [CHAT] * 2  # through Envoy, then direct
        # The skip route sets the upstream's Host, as the API route does.
        assert gets[0]["headers"]["host"] == "127.0.0.1"

        resp = harness.http_request(url, "POST", CHAT, json_body=IMAGEN_CHAT, headers=harness.OPENAI_AUTH)
        assert resp.status == 200, (resp, envoy.log_tail())
        # Imagen 4 is shut down (December 2026): its replacement serves it, translated.
        assert emulator.requests()[-1]["path"] == "/v1beta/models/gemini-3.1-flash-image:generateContent"
        assert resp.json()["object"] == "chat.completion"
        assert counters(envoy) == {"requests_total": 1, "migrated.imagen": 1, "rewritten.gemini_image": 1,
                                   "translated": 1}


@pytest.mark.parametrize("source", ["envoy.yaml", "chart"])
def test_without_the_skip_route_the_filter_counts_the_get(source, emulator, helm_template, wasm, tmp_path):
    config = rendered_for_emulator(source, emulator, helm_template, wasm, skip=False)
    with RunningEnvoy(config, tmp_path) as envoy:
        url = f"http://127.0.0.1:{envoy.port('gemini')}"
        assert harness.http_request(url, "GET", "/v1beta/models", headers=harness.NATIVE_AUTH).status == 200
        assert counters(envoy) == {"requests_total": 1, "passthrough.unrouted": 1}
