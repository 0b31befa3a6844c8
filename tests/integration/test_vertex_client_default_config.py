"""A Vertex client stays on Vertex under the default style (native): only the
method changes, the project and location stay, and the OAuth token is left
alone. Before the fix the request was moved onto the Developer API path
(`/v1beta/models/...:predict`). (Migration is off here: Imagen is the
example, and every Imagen model is shut down.)"""

from __future__ import annotations

import pytest

from tests.harness import only_request

pytestmark = pytest.mark.envoy

PREFIX = "/v1/projects/acme/locations/europe-west4/publishers/google/models"


FILTER_CONFIG = {"migrate": "never"}


def test_vertex_imagen_on_generate_content_stays_on_vertex(envoy, emulator):
    emulator.configure(live=["imagen-4.0-generate-001"])
    body = {"contents": [{"role": "user", "parts": [{"text": "a fox"}]}]}
    auth = {"authorization": "Bearer ya29.oauth-token"}
    resp = envoy.post(f"{PREFIX}/imagen-4.0-generate-001:generateContent", body, auth)
    record = only_request(emulator)
    assert record["path"] == f"{PREFIX}/imagen-4.0-generate-001:predict", record["path"]
    assert record["headers"]["authorization"] == "Bearer ya29.oauth-token"
    assert "x-goog-api-key" not in record["headers"]
    assert resp.status == 200, resp
    assert resp.json()["candidates"][0]["content"]["parts"][0]["inlineData"]["mimeType"] == "image/png"
