"""The Helm chart: `helm lint`, `helm template` for every CI values file, the
manifests checked with kubernetes-validate --strict, the Envoy config it renders
checked with `envoy --mode validate`, and bad values refused by values.schema.json."""

from __future__ import annotations

import base64
import copy
import gzip
import json
import shutil
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.artifacts import (
    CHART, CI_VALUES, K8S_VERSIONS, REPO, chart_envoy_config, check_accept_encoding_pair, find, parse_manifests, run, wasm_filter,
)

CONFIGMAP_LIMIT = 1048576  # bytes of data a ConfigMap may hold
SCHEMAS = REPO / "tests" / "deploy" / "schemas"


def check_crd(doc: dict) -> None:
    """A custom resource against its structural schema in tests/deploy/schemas/."""
    schema = json.loads((SCHEMAS / f"{doc['kind'].lower()}.schema.json").read_text())
    errors = [f"{list(e.path)}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]
    assert not errors, f"{doc['kind']}/{doc['metadata']['name']}: {errors}"
BAD_VALUES = REPO / "tests" / "deploy" / "bad-values"


def values_id(path: Path) -> str:
    return path.stem


def test_ci_values_cover_both_modes_and_every_wasm_source():
    values = [yaml.safe_load(p.read_text()) for p in CI_VALUES]
    assert {v.get("mode", "egress") for v in values} == {"egress", "sidecar"}
    # wasm.source=chart depends on the module's size: see test_chart_source_*.
    assert {v.get("wasm", {}).get("source", "configmap") for v in values} == {"configmap", "oci", "imageVolume", "url"}
    assert any(v.get("autoscaling", {}).get("enabled") for v in values)
    assert any(v.get("filter", {}).get("api_style") == "vertex" for v in values)
    monitoring = {k for v in values for k, m in v.get("metrics", {}).items() if isinstance(m, dict) and m.get("enabled")}
    assert monitoring == {"serviceMonitor", "podMonitor", "prometheusRule"}


def test_monitoring_objects_scrape_the_health_port(rendered):
    docs = rendered(next(p for p in CI_VALUES if p.stem == "hpa-pdb"))
    service, pod = find(docs, "Service"), find(docs, "Deployment")["spec"]["template"]
    monitor = find(docs, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert monitor["spec"]["endpoints"][0]["path"] == "/stats/prometheus"
    pod_monitor = find(docs, "PodMonitor")
    assert pod_monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] == "health"
    rules = find(docs, "PrometheusRule")
    shipped = yaml.safe_load((CHART / "files" / "prometheus-alerts.yaml").read_text())
    assert rules["spec"] == shipped
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_monitoring_schemas_refuse_mistakes(rendered):
    docs = rendered(next(p for p in CI_VALUES if p.stem == "hpa-pdb"))
    for kind, mutate in [("ServiceMonitor", lambda d: d["spec"]["endpoints"][0].update(path="stats")),
                         ("PodMonitor", lambda d: d["spec"].pop("podMetricsEndpoints")),
                         ("PrometheusRule", lambda d: d["spec"]["groups"][0]["rules"][0].pop("expr"))]:
        doc = copy.deepcopy(find(docs, kind))
        mutate(doc)
        with pytest.raises(AssertionError):
            check_crd(doc)


@pytest.mark.parametrize("values_file", CI_VALUES, ids=values_id)
def test_helm_lint(values_file, helm, chart):
    proc = run([helm, "lint", "--strict", str(chart), "-f", str(values_file)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize("k8s_version", K8S_VERSIONS)
@pytest.mark.parametrize("values_file", CI_VALUES, ids=values_id)
def test_manifests_pass_kubernetes_validate_strict(values_file, k8s_version, rendered):
    docs = rendered(values_file)
    assert docs, "helm template rendered nothing"
    for doc in docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            # Prometheus Operator CRDs: kubernetes-validate has no schema for them.
            check_crd(doc)
            continue
        try:
            kubernetes_validate.validate(doc, k8s_version, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} (k8s {k8s_version}): {err.message} at {list(err.path)}")


def test_kubernetes_validate_strict_catches_an_unknown_field(rendered):
    """Guards the check above: strict mode really refuses what Kubernetes would."""
    deployment = copy.deepcopy(find(rendered(CI_VALUES[0]), "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("values_file", CI_VALUES, ids=values_id)
def test_rendered_envoy_config_passes_envoy_validate(values_file, rendered, wasm, envoy_validate):
    config = chart_envoy_config(rendered(values_file), wasm)
    code, output = envoy_validate(config)
    assert code == 0, output


@pytest.mark.parametrize("values_file", CI_VALUES, ids=values_id)
def test_rendered_envoy_config_matches_the_values(values_file, rendered, wasm):
    values = yaml.safe_load(values_file.read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    docs = rendered(values_file)
    config = chart_envoy_config(docs, wasm)
    plugin = wasm_filter(config)
    # Helm merges maps with the chart defaults, so `filter: {}` keeps api_style.
    expected_filter = merge(defaults["filter"], values.get("filter") or {})
    # The chart's filter route removes accept-encoding, and says so unless the values do.
    expected_filter.setdefault("route_removes_accept_encoding", True)
    assert json.loads(plugin["configuration"]["value"]) == expected_filter
    assert json.loads(find(docs, "ConfigMap", "-envoy")["data"]["filter.json"]) == expected_filter
    assert plugin["allow_on_headers_stop_iteration"] is True
    check_accept_encoding_pair(config)
    upstream = {**defaults["upstream"], **values.get("upstream", {})}
    cluster = next(c for c in config["static_resources"]["clusters"] if c["name"] == "gemini")
    address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert address == {"address": upstream["host"], "port_value": upstream["port"]}
    assert ("transport_socket" in cluster) == upstream["tls"]
    listener = next(l for l in config["static_resources"]["listeners"] if l["name"] == "gemini")
    mode = values.get("mode", "egress")
    expected_address = values.get("envoy", {}).get("listenAddress") or ("127.0.0.1" if mode == "sidecar" else "::")
    assert listener["address"]["socket_address"]["address"] == expected_address
    # "::" serves IPv4 clients too.
    assert listener["address"]["socket_address"].get("ipv4_compat", False) == (expected_address == "::")
    max_body = expected_filter.get("max_body_bytes", 33554432)
    assert listener["per_connection_buffer_limit_bytes"] >= max_body
    assert cluster["per_connection_buffer_limit_bytes"] >= max_body
    assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"


@pytest.mark.parametrize("values_file", CI_VALUES, ids=values_id)
def test_workload_shape_follows_the_mode(values_file, rendered):
    values = yaml.safe_load(values_file.read_text())
    docs = rendered(values_file)
    kinds = sorted(d["kind"] for d in docs)
    if values.get("mode", "egress") == "sidecar":
        assert set(kinds) == {"ConfigMap"}, kinds
        find(docs, "ConfigMap", "-sidecar-patch")
        return
    deployment = find(docs, "Deployment")
    service = find(docs, "Service")
    pod = deployment["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/stats/prometheus"
    envoy = next(c for c in pod["spec"]["containers"] if c["name"] == "gemini-router")
    health_port = next(p["containerPort"] for p in envoy["ports"] if p["name"] == "health")
    assert annotations["prometheus.io/port"] == str(health_port)
    assert envoy["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "health"}
    # Liveness must not fail while Envoy drains (tests/deploy/test_drain.py).
    assert envoy["livenessProbe"]["httpGet"] == {"path": "/live", "port": "health"}
    assert envoy["lifecycle"]["preStop"]["exec"]["command"][:2] == ["/bin/bash", "-c"]
    assert envoy["image"] == "envoyproxy/envoy:v1.40.0"
    if values.get("autoscaling", {}).get("enabled"):
        hpa = find(docs, "HorizontalPodAutoscaler")
        assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        assert "replicas" not in deployment["spec"]
    else:
        assert "HorizontalPodAutoscaler" not in kinds
    pdb = find(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


@pytest.mark.parametrize("values_file", [p for p in CI_VALUES if "sidecar" in p.stem], ids=values_id)
def test_sidecar_patch_makes_a_valid_workload(values_file, rendered):
    """Apply the rendered patch to a stand-in app Deployment the way a strategic
    merge would (lists merged by name) and validate the result."""
    docs = rendered(values_file)
    patch = yaml.safe_load(find(docs, "ConfigMap", "-sidecar-patch")["data"]["patch.yaml"])
    template = patch["spec"]["template"]
    app = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": {
            "metadata": {"labels": {"app": "x"}, "annotations": {"owner": "team"}},
            "spec": {"containers": [{"name": "app", "image": "example/app:1"}], "volumes": [{"name": "data", "emptyDir": {}}]}}}}
    pod = app["spec"]["template"]
    pod["metadata"]["annotations"].update(template["metadata"]["annotations"])
    for key in ("initContainers", "containers", "volumes"):
        pod["spec"][key] = pod["spec"].get(key, []) + template["spec"].get(key, [])
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(app, version, strict=True)
    names = [c["name"] for c in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]]
    assert "gemini-router" in names
    mounted = {m["name"] for c in pod["spec"].get("initContainers", []) + pod["spec"]["containers"] for m in c.get("volumeMounts", [])}
    assert mounted <= {v["name"] for v in pod["spec"]["volumes"]}
    envoy = next(c for c in pod["spec"].get("initContainers", []) + pod["spec"]["containers"] if c["name"] == "gemini-router")
    native = yaml.safe_load(values_file.read_text()).get("sidecar", {}).get("native", True)
    assert (envoy.get("restartPolicy") == "Always") == native
    # The pod is not ours in sidecar mode: Envoy must carry its own non-root settings.
    assert envoy["securityContext"]["runAsNonRoot"] is True


CHART_SOURCE_LIMIT = 655360  # the chart refuses wasm.source=chart above this


def helm_release_record_size(chart_dir: Path, manifest: str) -> int:
    """Bytes of the Secret value Helm stores a release in: base64(gzip(JSON of
    the release)), where the release holds the chart's files and the manifest."""
    files = [{"name": str(p.relative_to(chart_dir)), "data": base64.b64encode(p.read_bytes()).decode()}
             for p in sorted(chart_dir.rglob("*")) if p.is_file()]
    release = {"name": "gr", "chart": {"files": files}, "manifest": manifest}
    return len(base64.b64encode(gzip.compress(json.dumps(release).encode(), compresslevel=9)))


def test_chart_source_embeds_the_module_or_refuses_it_by_size(helm_template, chart, wasm):
    """wasm.source=chart works while Helm can store the release (1 MiB Secret),
    and says what to do instead when the module is too big for that."""
    proc = helm_template("--set", "wasm.source=chart")
    size = wasm.stat().st_size
    if size > CHART_SOURCE_LIMIT:
        assert proc.returncode != 0
        assert f"the module is {size} bytes" in proc.stderr and "wasm.source=configmap" in proc.stderr, proc.stderr
        return
    assert proc.returncode == 0, proc.stderr
    docs = parse_manifests(proc.stdout)
    module = base64.b64decode(find(docs, "ConfigMap", "-wasm")["binaryData"]["gemini_router.wasm"])
    assert module == wasm.read_bytes()
    assert helm_release_record_size(chart, proc.stdout) < CONFIGMAP_LIMIT


def test_chart_source_limit_keeps_the_release_record_under_1_mib(tmp_path, chart, helm, wasm):
    """The 640 KiB cut-off is safe for a module that compresses like ours: a
    module of exactly that size, made of the built module's own bytes, fits
    Helm's release Secret. (Random bytes would not: Helm gzips the release, and
    an incompressible module of that size would need about 2 MiB.)"""
    module = wasm.read_bytes()
    sized = (module * (CHART_SOURCE_LIMIT // len(module) + 1))[:CHART_SOURCE_LIMIT]
    limit_chart = tmp_path / "gemini-router"
    shutil.copytree(chart, limit_chart)
    (limit_chart / "files" / "gemini_router.wasm").write_bytes(sized)
    proc = run([helm, "template", "gr", str(limit_chart), "--set", "wasm.source=chart"])
    assert proc.returncode == 0, proc.stderr
    assert helm_release_record_size(limit_chart, proc.stdout) < CONFIGMAP_LIMIT


def test_configmap_source_mounts_the_users_configmap(rendered):
    docs = rendered(next(p for p in CI_VALUES if p.stem == "egress"))
    volumes = find(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    wasm_volume = next(v for v in volumes if v["name"] == "gemini-router-wasm")
    assert wasm_volume["configMap"] == {"name": "gemini-router-wasm",
                                        "items": [{"key": "gemini_router.wasm", "path": "gemini_router.wasm"}]}
    assert not [d for d in docs if d["metadata"]["name"].endswith("-wasm")], "the chart must not create it"


def test_chart_source_without_the_module_fails_with_instructions(helm, tmp_path):
    bare = tmp_path / "gemini-router"
    shutil.copytree(CHART, bare, ignore=shutil.ignore_patterns("*.wasm", "*.tgz"))
    proc = run([helm, "template", "gr", str(bare), "--set", "wasm.source=chart"])
    assert proc.returncode != 0
    assert "files/gemini_router.wasm" in proc.stderr and "package.sh" in proc.stderr, proc.stderr


def test_default_chart_renders_without_the_module(helm, tmp_path):
    bare = tmp_path / "gemini-router"
    shutil.copytree(CHART, bare, ignore=shutil.ignore_patterns("*.wasm", "*.tgz"))
    proc = run([helm, "template", "gr", str(bare)])
    assert proc.returncode == 0, proc.stderr


BAD = [
    ("bad-mode.yaml", "/mode"),
    ("unknown-filter-field.yaml", "nope"),
    ("vertex-without-project.yaml", "vertex"),
    ("bad-model-rule.yaml", "/filter/rules/0/family"),
    ("zero-replicas.yaml", "/replicaCount"),
    ("bad-failure-policy.yaml", "/envoy/failurePolicy"),
    ("oci-without-image.yaml", "image"),
    ("url-without-sha256.yaml", "sha256"),
    ("unknown-top-level-key.yaml", "replicas"),
]


def test_every_bad_values_file_is_listed():
    assert sorted(p.name for p in BAD_VALUES.glob("*.yaml")) == sorted(name for name, _ in BAD)


@pytest.mark.parametrize("name, message", BAD, ids=[name for name, _ in BAD])
def test_bad_values_are_refused_at_template_time(name, message, helm_template):
    proc = helm_template("-f", str(BAD_VALUES / name))
    assert proc.returncode != 0, f"helm accepted {name}"
    assert "schema" in proc.stderr, f"{name} was not refused by values.schema.json:\n{proc.stderr}"
    assert message in proc.stderr, proc.stderr


def test_cross_field_checks_in_templates(helm_template):
    proc = helm_template("--set", "filter.max_body_bytes=134217728")
    assert proc.returncode != 0
    assert "envoy.bufferLimitBytes" in proc.stderr
    proc = helm_template("--set", "autoscaling.enabled=true", "--set", "resources.requests=null")
    assert proc.returncode != 0
    assert "resources.requests.cpu" in proc.stderr


def test_values_schema_is_generated_from_the_filter_schema():
    proc = run([sys.executable, str(REPO / "deploy" / "helm" / "gen-values-schema.py"), "--check"])
    assert proc.returncode == 0, proc.stderr
    values_schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(values_schema)
    filter_schema = json.loads((REPO / "schema" / "config.schema.json").read_text())
    assert values_schema["properties"]["filter"]["properties"] == filter_schema["properties"]


@pytest.mark.parametrize("values_file", [CHART / "values.yaml", *CI_VALUES], ids=values_id)
def test_values_files_pass_the_schema_in_python_too(values_file):
    """Same verdict from a second implementation (python-jsonschema) as from helm's."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    merged = merge(defaults, yaml.safe_load(values_file.read_text()) or {})
    errors = [f"{list(e.path)}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(merged)]
    assert not errors, errors


def merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


@pytest.mark.parametrize("values_file", CI_VALUES, ids=values_id)
def test_install_notes_render_and_name_the_next_step(values_file, helm, chart):
    """NOTES.txt is not part of `helm template`; a client-side dry-run install renders it."""
    proc = run([helm, "install", "gr", str(chart), "--namespace", "ai", "--dry-run=client", "-f", str(values_file)])
    assert proc.returncode == 0, proc.stderr
    notes = proc.stdout.split("NOTES:", 1)[1]
    values = yaml.safe_load(values_file.read_text())
    if values.get("mode", "egress") == "sidecar":
        assert "--patch-file" in notes and "gr-gemini-router-sidecar-patch" in notes, notes
    else:
        assert "http://gr-gemini-router.ai:80/v1beta/openai" in notes, notes
    source = values.get("wasm", {}).get("source", "configmap")
    assert ("kubectl -n ai create configmap gemini-router-wasm" in notes) == (source == "configmap"), notes
