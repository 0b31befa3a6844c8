"""Envoy refuses a bad filter configuration (`envoy --mode validate` fails) and accepts a good one."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.envoy

BAD = [
    pytest.param({"bogus": 1}, ("bogus",), id="unknown-field"),
    pytest.param({"rules": [{"match": "dall-e-*", "family": "dalle"}]}, ("rules", "dalle"), id="bad-rule-family"),
    pytest.param({"rules": [{"match": "x-*", "family": "imagen", "extra": 1}]}, ("extra",), id="unknown-rule-field"),
    pytest.param({"family_styles": {"imagen": "grpc"}}, ("family_styles", "grpc"), id="bad-family-style"),
    pytest.param({"api_style": "anthropic"}, ("api_style", "anthropic"), id="bad-api-style"),
    pytest.param({"upstream": "not a url"}, ("upstream",), id="bad-upstream-url"),
    pytest.param({"api_style": "vertex"}, ("vertex",), id="vertex-without-block"),
    pytest.param({"family_styles": {"imagen": "vertex"}}, ("vertex",), id="vertex-family-without-block"),
    pytest.param({"max_body_bytes": 0}, ("max_body_bytes",), id="max-body-zero"),
    pytest.param({"max_body_bytes": 1073741825}, ("max_body_bytes",), id="max-body-too-big"),
    pytest.param({"max_model_length": 257}, ("max_model_length",), id="max-model-length"),
    pytest.param({"annotate_statuses": [200]}, ("annotate_statuses",), id="annotate-2xx"),
    pytest.param({"native_version": "v2"}, ("native_version", "v2"), id="native-version"),
    pytest.param({"default_family": "dalle"}, ("default_family", "dalle"), id="default-family"),
    pytest.param('{"api_style": ', None, id="not-json"),
]

GOOD = [
    pytest.param(None, id="empty-string"),
    pytest.param({}, id="empty-object"),
    pytest.param({"api_style": "openai", "openai_images_families": ["imagen"]}, id="openai"),
    pytest.param(
        {
            "api_style": "native",
            "family_styles": {"imagen": "vertex", "embedding": "openai"},
            "rules": [{"match": "my-*", "family": "gemini_image"}, {"match": "img-?", "family": "imagen"}],
            "builtin_rules": True,
            "default_family": "gemini",
            "native_version": "v1beta",
            "openai_base_path": "/v1beta/openai",
            "vertex": {"project": "p", "location": "us-central1", "publisher": "google", "version": "v1"},
            "upstream": "https://generativelanguage.googleapis.com",
            "annotate_statuses": [400, 404, 429],
            "max_body_bytes": 33554432,
            "max_model_length": 128,
            "image_message_format": "image_url_parts",
        },
        id="every-field",
    ),
    pytest.param({"api_style": "vertex", "vertex": {"project": "p", "location": "global"}}, id="vertex"),
    pytest.param({"upstream": "https://localhost:8443"}, id="upstream-with-port"),
]


@pytest.mark.parametrize("config,culprits", BAD)
def test_bad_configuration_is_refused(validate, config, culprits):
    rc, output = validate(config)
    assert rc != 0, f"Envoy accepted a bad configuration:\n{output[-3000:]}"
    if culprits:
        # The log names the offending field or value, so an operator can fix it.
        assert any(c in output for c in culprits), f"refusal does not name {culprits}:\n{output[-3000:]}"


@pytest.mark.parametrize("config", GOOD)
def test_good_configuration_is_accepted(validate, config):
    rc, output = validate(config)
    assert rc == 0, output[-3000:]
