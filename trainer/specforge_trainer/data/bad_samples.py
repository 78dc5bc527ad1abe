"""How many unusable conversations a run tolerates: skip them with a warning, stop when there are too many.

A few broken lines in a large scraped chat set should not cost a run; a dataset that is mostly
unreadable (wrong schema, a template that cannot render it) should stop it before any model work,
with the reasons in front of the user rather than a silently tiny training set.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from specforge_trainer.data.chat_jsonl import BadSample, DatasetError

logger = logging.getLogger(__name__)

NAMED_IN_MESSAGES = 5  # bad samples listed by name in a warning or error; the rest are counted


def _listing(bad: Sequence[BadSample]) -> str:
    shown = "; ".join(str(sample) for sample in bad[:NAMED_IN_MESSAGES])
    more = len(bad) - NAMED_IN_MESSAGES
    return shown + (f"; and {more} more" if more > 0 else "")


def enforce_bad_sample_budget(bad: Sequence[BadSample], total: int, max_fraction: float) -> None:
    """Warn about ``bad`` (out of ``total`` conversations); raise when their share exceeds ``max_fraction``."""
    if not bad:
        return
    fraction = len(bad) / total
    if fraction > max_fraction:
        raise DatasetError(
            f"{len(bad)} of {total} conversations ({fraction:.1%}) cannot be used, more than "
            f"spec.dataset.maxBadSampleFraction ({max_fraction:.1%}): {_listing(bad)}"
        )
    logger.warning("skipping %d of %d conversations: %s", len(bad), total, _listing(bad))
