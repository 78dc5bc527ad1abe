"""What every process of a run derives identically from its manifest: the target, the tokenized training
set, the data schedule, and the draft built for them. The trainer builders, the feature producers and
``specforge eval`` all start here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from specforge_api import SpecForgeRun

from specforge_trainer.data.tokenize import TokenizedSample
from specforge_trainer.data.training_set import load_training_set
from specforge_trainer.models.draft import DraftConfig, Eagle3DraftModel
from specforge_trainer.models.draft_vocab import DraftVocab, build_draft_vocab
from specforge_trainer.models.target import TargetModel, describe_target
from specforge_trainer.preflight import check_run_fits_target
from specforge_trainer.regeneration import training_dataset
from specforge_trainer.train.data_schedule import DataSchedule
from specforge_trainer.train.distributed import ParallelContext


@dataclass
class RunData:
    """What every process of a run derives identically from the manifest."""

    target: TargetModel
    samples: list[TokenizedSample]
    schedule: DataSchedule


def load_run_data(
    run: SpecForgeRun,
    context: ParallelContext,
    feature_store_dir: Path | None = None,
    *,
    dataset: Path | None = None,
) -> RunData:
    """``feature_store_dir`` holds the regenerated conversations when the run regenerates its dataset
    (the regeneration stage must have finished); without regeneration it is not read. ``dataset``
    overrides the file read (eval, which takes the draft's vocabulary from the checkpoint)."""
    spec = run.spec
    training = spec.training
    dataset_path = dataset or training_dataset(run, feature_store_dir)
    description = describe_target(builtin=spec.target_model.builtin, path=spec.target_model.path)
    samples = load_training_set(
        dataset_path,
        description.tokenizer,
        max_length=training.max_length,
        max_bad_fraction=spec.dataset.max_bad_sample_fraction,
        held_out=spec.dataset.held_out_conversations,
    )
    check_run_fits_target(run, description, samples)  # before the weights load and any feature
    target = description.load().to(context.device)
    schedule = DataSchedule(len(samples), training.batch_size, context.world_size, training.seed)
    return RunData(target=target, samples=samples, schedule=schedule)


def trained_tokens(samples: Sequence[TokenizedSample]) -> list[torch.Tensor]:
    """The tokens the draft learns to predict: ``x[t+1]`` wherever ``loss_mask[t]`` is set."""
    return [sample.input_ids[1:][sample.loss_mask[:-1].bool()] for sample in samples]


def build_draft(run: SpecForgeRun, data: RunData) -> Eagle3DraftModel:
    target = data.target
    draft_vocab_size = run.spec.training.draft_vocab_size  # checked against the target by preflight
    vocab: DraftVocab = build_draft_vocab(
        trained_tokens(data.samples), target_vocab_size=target.vocab_size, draft_vocab_size=draft_vocab_size
    )
    config = DraftConfig.for_target(target.model.config, draft_vocab_size=draft_vocab_size)
    torch.manual_seed(run.spec.training.seed)
    return Eagle3DraftModel(config, target.embedding, vocab).to(target.device)
