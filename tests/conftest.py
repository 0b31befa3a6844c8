"""Shared fixtures: the Gemini emulator and Envoy instances in front of it.

- ``emulator`` (session): the in-process emulator on a free port; reset
  before every test (records and configuration), so tests start clean.
  Handle: ``.url``, ``.requests()``,
  ``.configure(retired=..., valid_keys=..., live=...)`` (``live`` revives
  shut-down models of the December 2026 catalogue for one test; a module's
  ``REVIVE`` list is revived before each of its tests).
- ``start_envoy`` (module): factory ``start_envoy(filter_config, with_filter=True)``
  returning a started ``harness.Envoy`` routed to the emulator; every
  instance it started is stopped when the module ends.
- ``envoy`` (module): Envoy with the default filter configuration, shared by
  every module that does not override it; a module that sets
  ``FILTER_CONFIG`` gets its own Envoy with that configuration. A module can
  also override it::

      @pytest.fixture(scope="module")
      def envoy(start_envoy):
          return start_envoy({"api_style": "vertex", ...})

- ``validate``: ``validate(filter_config) -> (returncode, output)`` of
  ``envoy --mode validate``.

When a test fails, the log each live Envoy wrote during that test is attached
to the report.
"""

from __future__ import annotations

from typing import Callable, Iterator

import pytest

from tests import harness
from tests.emulator import Emulator

_LOG_MARKS = pytest.StashKey[dict]()
_MAX_LOG_CHARS = 30000
_TAIL_CHARS = 4000


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    emu = Emulator().start()
    yield emu
    emu.stop()


@pytest.fixture(autouse=True)
def _fresh_emulator(emulator: Emulator, request: pytest.FixtureRequest) -> None:
    emulator.reset()
    # A module whose subject is a model Google shut down revives it for each
    # of its tests: ``REVIVE = ["imagen-4.0-generate-001"]``.
    revive = getattr(request.module, "REVIVE", None)
    if revive:
        emulator.configure(live=revive)


def _start(emulator: Emulator, started: list[harness.Envoy], filter_config, with_filter: bool) -> harness.Envoy:
    try:
        envoy = harness.Envoy(emulator.host, emulator.port, filter_config, with_filter=with_filter)
    except harness.WasmMissing as err:
        pytest.fail(str(err), pytrace=False)
    started.append(envoy)
    return envoy.start()


@pytest.fixture(scope="module")
def start_envoy(emulator: Emulator) -> Iterator[Callable[..., harness.Envoy]]:
    started: list[harness.Envoy] = []

    def start(filter_config: dict | str | None = None, *, with_filter: bool = True) -> harness.Envoy:
        return _start(emulator, started, filter_config, with_filter)

    yield start
    for envoy in started:
        envoy.stop()


@pytest.fixture(scope="session")
def _default_envoy(emulator: Emulator) -> Iterator[harness.Envoy]:
    started: list[harness.Envoy] = []
    yield _start(emulator, started, None, True)
    for envoy in started:
        envoy.stop()


@pytest.fixture(scope="module")
def envoy(request: pytest.FixtureRequest, _default_envoy: harness.Envoy, start_envoy) -> harness.Envoy:
    # A module may name its filter configuration instead of overriding the
    # fixture: ``FILTER_CONFIG = {"migrate": "never"}``.
    config = getattr(request.module, "FILTER_CONFIG", None)
    return _default_envoy if config is None else start_envoy(config)


@pytest.fixture
def validate() -> Callable[[dict | str | None], tuple[int, str]]:
    def run(filter_config: dict | str | None) -> tuple[int, str]:
        try:
            harness.wasm_path()
        except harness.WasmMissing as err:
            pytest.fail(str(err), pytrace=False)
        return harness.validate(filter_config)

    return run


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    item.stash[_LOG_MARKS] = {id(e): e.log_size() for e in harness.live_envoys()}
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    marks = item.stash.get(_LOG_MARKS, {})
    for envoy in harness.live_envoys():
        text = envoy.log_text(marks.get(id(envoy), 0))
        title = f"Envoy log ({envoy.config_path}), since test start"
        if not text.strip():
            text = envoy.log_tail(_TAIL_CHARS)
            title = f"Envoy log ({envoy.config_path}): nothing new during the test; last lines"
        if len(text) > _MAX_LOG_CHARS:
            text = "...\n" + text[-_MAX_LOG_CHARS:]
        report.sections.append((title, text))
