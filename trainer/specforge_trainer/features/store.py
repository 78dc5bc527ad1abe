"""Feature stores: the tensors behind a :class:`SampleRef`, which itself stays metadata-only.

``DirectoryFeatureStore`` writes one safetensors file per sample under a directory (a shared volume
in Kubernetes), atomically (temporary file + rename), so a reader never sees half a file.
``MemoryFeatureStore`` keeps features in-process for online training, where each one is used once
and released as the loader consumes it. Both answer the same ``put``/``load``/``release``/``contains``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from specforge_trainer.control_plane import FeatureSpec, SampleRef

FEATURE_KEYS = ("input_ids", "loss_mask", "aux_hidden_states", "target_hidden")
MEMORY_SCHEME = "memory://"


def describe(features: dict[str, torch.Tensor]) -> tuple[tuple[FeatureSpec, ...], int]:
    """Feature specs and the stored size in bytes (what bounds offline training at scale)."""
    specs = tuple(
        FeatureSpec(name=name, shape=tuple(tensor.shape), dtype=str(tensor.dtype).removeprefix("torch."))
        for name, tensor in features.items()
    )
    return specs, sum(tensor.numel() * tensor.element_size() for tensor in features.values())


class DirectoryFeatureStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def uri_for(self, key: str) -> str:
        return str(self.root / f"{key}.safetensors")

    def contains(self, key: str) -> bool:
        return Path(self.uri_for(key)).is_file()

    def put(self, key: str, features: dict[str, torch.Tensor]) -> str:
        path = Path(self.uri_for(key))
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        save_file({name: tensor.contiguous().cpu() for name, tensor in features.items()}, str(temporary))
        os.replace(temporary, path)
        return str(path)

    def load(self, ref: SampleRef) -> dict[str, torch.Tensor]:
        if ref.feature_uri.startswith(MEMORY_SCHEME):
            raise ValueError(f"ref {ref.sample_id!r} points at in-process memory, not at {self.root}")
        path = Path(ref.feature_uri)
        if not path.is_file():
            raise FileNotFoundError(f"features of {ref.sample_id!r} are missing: {path}")
        return load_file(str(path))

    def release(self, ref: SampleRef) -> None:
        Path(ref.feature_uri).unlink(missing_ok=True)


class MemoryFeatureStore:
    def __init__(self) -> None:
        self._features: dict[str, dict[str, torch.Tensor]] = {}

    def uri_for(self, key: str) -> str:
        return f"{MEMORY_SCHEME}{key}"

    def contains(self, key: str) -> bool:
        return self.uri_for(key) in self._features

    def put(self, key: str, features: dict[str, torch.Tensor]) -> str:
        uri = self.uri_for(key)
        self._features[uri] = features
        return uri

    def load(self, ref: SampleRef) -> dict[str, torch.Tensor]:
        try:
            return self._features[ref.feature_uri]
        except KeyError:
            raise FileNotFoundError(
                f"features of {ref.sample_id!r} are not in memory ({ref.feature_uri})"
            ) from None

    def release(self, ref: SampleRef) -> None:
        self._features.pop(ref.feature_uri, None)


FeatureStoreBackend = DirectoryFeatureStore | MemoryFeatureStore
