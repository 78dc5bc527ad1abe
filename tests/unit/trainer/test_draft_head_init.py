"""``training.draftHeadInit``: the draft's head and final norm start from the target's, or fresh."""

from __future__ import annotations

import pytest
import torch
from _support.manifests import minimal_run
from specforge_api import SpecForgeRun
from specforge_trainer.run_data import build_draft, load_run_data
from specforge_trainer.train.distributed import ParallelContext

CPU = ParallelContext(rank=0, world_size=1, device=torch.device("cpu"))


def _draft(head_init: str | None):
    training = {"maxLength": 64, "draftVocabSize": 256}
    if head_init is not None:
        training["draftHeadInit"] = head_init
    run = SpecForgeRun.model_validate(minimal_run("head", training=training))
    data = load_run_data(run, CPU)
    return data.target, build_draft(run, data)


def test_target_init_copies_the_targets_head_rows_of_the_draft_vocabulary_and_its_final_norm() -> None:
    target, draft = _draft("target")
    rows = draft.draft_ids_to_target
    assert torch.equal(draft.lm_head.weight, target.lm_head.weight[rows])
    assert torch.equal(draft.norm.weight, target.final_norm.weight)
    # A copy, not a view: training the draft leaves the target as it was.
    before = target.lm_head.weight.detach().clone()
    with torch.no_grad():
        draft.lm_head.weight.add_(1.0)
    assert torch.equal(target.lm_head.weight, before)


@pytest.mark.parametrize("head_init", [None, "random"])
def test_random_init_is_the_seeded_fresh_head(head_init: str | None) -> None:
    target, draft = _draft(head_init)
    _, again = _draft("random")
    assert torch.equal(draft.lm_head.weight, again.lm_head.weight)
    assert not torch.equal(draft.lm_head.weight, target.lm_head.weight[draft.draft_ids_to_target])
    assert torch.equal(draft.norm.weight, torch.ones_like(draft.norm.weight))
