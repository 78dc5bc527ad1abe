"""Per-test durations for `make test`'s closing summary (hack/test_timings.py prints it).

Active only when ``$SPECFORGE_TIMINGS_DIR`` is set (the Makefile's ``test`` target sets it): each test's
setup + call + teardown time and its layer go to ``tests.tsv`` there at the end of the session, and the
session's own preparations (the local cluster coming up) to ``preparations.tsv`` beside the Makefile's.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

_LAYERS = ("realnode", "e2e", "integration")


def _timings_dir() -> Path | None:
    value = os.environ.get("SPECFORGE_TIMINGS_DIR")
    return Path(value) if value else None


def layer_of(item: pytest.Item) -> str:
    """The slowest layer a test belongs to: realnode, e2e, integration, or unit."""
    marks = {mark.name for mark in item.iter_markers()}
    return next((layer for layer in _LAYERS if layer in marks), "unit")


@contextmanager
def timed_preparation(name: str) -> Iterator[None]:
    """Record how long a session-wide preparation (the test cluster coming up) took."""
    start = time.monotonic()
    status = 1
    try:
        yield
        status = 0
    finally:
        directory = _timings_dir()
        if directory is not None:
            _append(directory / "preparations.tsv", f"{name}\t{time.monotonic() - start:.1f}\t{status}\n")


class _Recorder:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.layers: dict[str, str] = {}
        self.seconds: dict[str, float] = {}
        self.outcomes: dict[str, str] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.layers = {item.nodeid: layer_of(item) for item in items}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[report.nodeid] = self.seconds.get(report.nodeid, 0.0) + report.duration
        if report.when == "call" or report.outcome != "passed":
            self.outcomes[report.nodeid] = report.outcome

    def pytest_sessionfinish(self) -> None:
        rows = "".join(
            f"{nodeid}\t{self.layers.get(nodeid, 'unit')}\t{seconds:.2f}\t{self.outcomes.get(nodeid, 'passed')}\n"
            for nodeid, seconds in self.seconds.items()
        )
        _append(self.directory / "tests.tsv", rows)


def _append(path: Path, text: str) -> None:
    """One append of the whole text: `make test`'s two test sessions may finish at the same moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def pytest_configure(config: pytest.Config) -> None:
    directory = _timings_dir()
    if directory is not None:
        config.pluginmanager.register(_Recorder(directory), "specforge-timings")
