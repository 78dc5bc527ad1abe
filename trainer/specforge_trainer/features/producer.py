"""Produce EAGLE3 features for tokenized samples and describe them as :class:`SampleRef` records.

Features are computed one sample at a time (see :meth:`TargetModel.extract_features`), so online
training, offline precompute and separate producer processes store bit-identical tensors. A feature
file is keyed by the sample's dataset index and reused by every epoch; a ref's ``sample_id`` adds the
epoch, because each epoch trains (and acks) every sample once.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from specforge_trainer.control_plane import FeatureSpec, SampleRef
from specforge_trainer.data.tokenize import TokenizedSample
from specforge_trainer.features.store import FEATURE_KEYS, FeatureStoreBackend, describe
from specforge_trainer.models.target import TargetModel


def feature_key(index: int) -> str:
    return f"sample-{index:06d}"


def sample_id(epoch: int, index: int) -> str:
    return f"e{epoch:04d}-s{index:06d}"


class FeatureProducer:
    def __init__(
        self,
        run_id: str,
        target: TargetModel,
        samples: Sequence[TokenizedSample],
        store: FeatureStoreBackend,
    ) -> None:
        self.run_id = run_id
        self.target = target
        self.samples = samples
        self.store = store
        self.tokenizer_version = getattr(target.tokenizer, "name_or_path", "") or "bundled"
        self._specs: dict[int, tuple[tuple[FeatureSpec, ...], int]] = {}

    def compute(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.samples[index]
        features = self.target.extract_features(sample.input_ids)
        return {
            "input_ids": sample.input_ids,
            "loss_mask": sample.loss_mask,
            "aux_hidden_states": features.aux_hidden_states.cpu(),
            "target_hidden": features.target_hidden.cpu(),
        }

    def ensure(self, index: int) -> None:
        """Compute and store the features of ``index`` unless the store already has them."""
        key = feature_key(index)
        if not self.store.contains(key):
            features = self.compute(index)
            self.store.put(key, features)
            self._specs[index] = describe(features)

    def ref(self, epoch: int, index: int) -> SampleRef:
        """The ref of sample ``index`` in ``epoch``; its features must already be stored."""
        if index not in self._specs:
            self._specs[index] = self._describe_stored(index)
        specs, size = self._specs[index]
        return SampleRef(
            sample_id=sample_id(epoch, index),
            run_id=self.run_id,
            feature_uri=self.store.uri_for(feature_key(index)),
            feature_keys=FEATURE_KEYS,
            feature_specs=specs,
            num_tokens=int(self.samples[index].input_ids.numel()),
            estimated_bytes=size,
            target_model_version=self.target.version,
            tokenizer_version=self.tokenizer_version,
        )

    def _describe_stored(self, index: int) -> tuple[tuple[FeatureSpec, ...], int]:
        tokens, hidden = int(self.samples[index].input_ids.numel()), self.target.hidden_size
        dtype = self.target.model.dtype
        shapes = {
            "input_ids": (tokens,),
            "loss_mask": (tokens,),
            "aux_hidden_states": (tokens, 3 * hidden),
            "target_hidden": (tokens, hidden),
        }
        dtypes = {
            "input_ids": torch.long,
            "loss_mask": torch.long,
            "aux_hidden_states": dtype,
            "target_hidden": dtype,
        }
        return describe(
            {name: torch.empty(shapes[name], dtype=dtypes[name], device="meta") for name in FEATURE_KEYS}
        )
