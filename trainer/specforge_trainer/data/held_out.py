"""The train / held-out split of a run's conversations: the last ``spec.dataset.heldOutConversations``.

The split depends on the file alone (not the seed, the deployment mode or the world size), so every
process of a run, in every mode, trains on the same conversations, and ``specforge eval`` measures
the draft on conversations it never saw. It is taken among readable conversations, before
tokenisation: a held-out chat the template cannot render for training does not shift the split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from specforge_trainer.data.chat_jsonl import ChatSample, DatasetError

FIELD = "spec.dataset.heldOutConversations"


@dataclass(frozen=True)
class Split:
    training: list[ChatSample]
    held_out: list[ChatSample]


def split_held_out(chats: Sequence[ChatSample], held_out: int) -> Split:
    """The last ``held_out`` conversations apart from the rest (which may be none: see
    :func:`require_training_left`)."""
    cut = max(len(chats) - held_out, 0)
    return Split(training=list(chats[:cut]), held_out=list(chats[cut:]))


def require_training_left(split: Split, held_out: int) -> None:
    """DatasetError when holding ``held_out`` conversations out left none to train on."""
    if not split.training:
        raise DatasetError(
            f"{FIELD} ({held_out}) leaves no conversation to train on: the dataset has "
            f"{len(split.held_out)} readable conversations; lower it or add data"
        )
