"""Bad input stops ``specforge`` early with one clear message and exit status 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from _support.manifests import minimal_run
from specforge_trainer.cli import EXIT_BAD_INPUT, main
from specforge_trainer.train.trainer import TrainerSettings


def _manifest(tmp_path: Path, **spec: Any) -> Path:
    document = minimal_run("bad", **spec)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize(
    ("spec", "field_path", "reason"),
    [
        ({"deploymentMode": "hybrid"}, "spec.deploymentMode", "Input should be"),
        ({"training": {"tttLength": 0}}, "spec.training.tttLength", "greater than or equal to 1"),
        ({"targetModel": {}}, "spec.targetModel", "exactly one of builtin or path"),
    ],
)
def test_manifest_errors_name_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: dict[str, Any], field_path: str, reason: str
) -> None:
    assert main(["run", str(_manifest(tmp_path, **spec)), "--out", str(tmp_path / "out")]) == EXIT_BAD_INPUT
    error = capsys.readouterr().err
    assert field_path in error and reason in error
    assert not (tmp_path / "out").exists()  # rejected before any work


def test_missing_model_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-such-model"
    path = _manifest(tmp_path, targetModel={"path": str(missing)})
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "out")]) == EXIT_BAD_INPUT
    assert f"target model directory {str(missing)!r} does not exist" in capsys.readouterr().err


def test_malformed_dataset_line_is_reported_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "chat.jsonl"
    data.write_text(
        '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\nnot json\n'
    )
    path = _manifest(tmp_path, dataset={"path": str(data)})
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == EXIT_BAD_INPUT
    assert f"{data}:2: not valid JSON" in capsys.readouterr().err


def test_empty_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "empty.jsonl"
    data.write_text("\n")
    assert (
        main(["run", str(_manifest(tmp_path, dataset={"path": str(data)})), "--out", str(tmp_path / "o")])
        == 2
    )
    assert "is empty" in capsys.readouterr().err


def test_trainer_settings_refuse_a_zero_unroll(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ttt_length must be at least 1"):
        TrainerSettings(
            epochs=1,
            learning_rate=1e-3,
            ttt_length=0,
            checkpoint_interval=1,
            keep_checkpoints=1,
            checkpoint_dir=tmp_path,
        )


def test_unknown_deployment_mode_is_refused_at_the_edge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The pod's env names the mode; the CLI resolves it once, before anything is built."""
    monkeypatch.setenv("SPECFORGE_DEPLOYMENT_MODE", "hybrid")
    argv = ["train", "--config", str(_manifest(tmp_path)), "--out", str(tmp_path / "out")]
    assert main(argv) == EXIT_BAD_INPUT
    assert "unknown deployment mode 'hybrid'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
