"""The ``render`` fixture: the operator chart rendered by the real ``helm template`` with given values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from integration.chart.helm_render import Manifests, render_chart


@pytest.fixture
def render(tmp_path: Path) -> Callable[..., Manifests]:
    """``render({...values})`` → the manifests, or :class:`RenderError` with helm's message."""
    return lambda values=None, *extra: render_chart(values or {}, tmp_path, *extra)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every chart test runs the real helm binary, so none belongs in the fast layer."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.binaries)
