"""Checks of a run against its target that need only the target's config and tokenizer.

They run after tokenisation and before the target's weights load or any feature is computed, so a
manifest that cannot work (a draft vocabulary larger than the target's, samples longer than the
target's positions, token ids past its embedding) fails in seconds with the field to change.
"""

from __future__ import annotations

from collections.abc import Sequence

from specforge_api import SpecForgeRun

from specforge_trainer.data.tokenize import TokenizedSample
from specforge_trainer.models.target import TargetDescription, default_aux_layer_ids


def check_run_fits_target(
    run: SpecForgeRun, target: TargetDescription, samples: Sequence[TokenizedSample]
) -> None:
    """Raise ValueError naming the manifest field (or sample) that the target cannot serve."""
    config, training = target.config, run.spec.training
    default_aux_layer_ids(config.num_hidden_layers)
    if training.draft_vocab_size > config.vocab_size:
        raise ValueError(
            f"spec.training.draftVocabSize ({training.draft_vocab_size}) exceeds the target vocabulary "
            f"({config.vocab_size})"
        )
    positions = getattr(config, "max_position_embeddings", None)
    if positions is not None and training.max_length > positions:
        raise ValueError(
            f"spec.training.maxLength ({training.max_length}) exceeds the target's max_position_embeddings "
            f"({positions})"
        )
    for sample in samples:
        largest = int(sample.input_ids.max()) if sample.input_ids.numel() else -1
        if largest >= config.vocab_size:
            raise ValueError(
                f"sample {sample.sample_key!r} has token id {largest}, past the target's vocabulary "
                f"({config.vocab_size}): the tokenizer does not belong to this model"
            )


def check_eval_prompts(run: SpecForgeRun, prompts: int | None) -> int:
    """How many held-out conversations ``specforge eval`` answers (all when ``prompts`` is None);
    ValueError when the run holds out none, or fewer than ``prompts``."""
    held_out = run.spec.dataset.held_out_conversations
    if held_out == 0:
        raise ValueError(
            "spec.dataset.heldOutConversations is 0: every conversation was trained on, so eval has no "
            "unseen prompts; set it (the default holds out 16) and train again"
        )
    if prompts is None:
        return held_out
    if not 1 <= prompts <= held_out:
        raise ValueError(
            f"--prompts {prompts} is outside 1..{held_out} (spec.dataset.heldOutConversations: the "
            "conversations training never saw)"
        )
    return prompts
