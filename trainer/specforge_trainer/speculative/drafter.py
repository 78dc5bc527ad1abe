"""An EAGLE3 draft decoding incrementally, as a serving engine runs it: a KV cache over absolute positions.

Training unrolls the draft over a whole sequence at once (:meth:`Eagle3DraftModel.step`); decoding
grows the sequence a few tokens per round, so recomputing the unroll every round would cost the draft
O(length) per token. This drafter keeps the draft's keys and values of every verified position (the
*context*: position ``p`` reads the target's features at ``p`` and the token at ``p + 1``) and drafts a
chain of ``k`` tokens from the last one, each chain step one position further on (rotary at
``p + i``, as SGLang serves and as training's TTT step ``i`` rotates). Chain keys are dropped after
the round: the accepted tokens come back through :meth:`ChainDrafter.extend` with the target's features.

It reuses the draft's own decoder layer, norm and heads; only the positions and the attention mask are
its own (past keys all visible, causal among the new rows). ``tests/unit/trainer/test_speculative.py``
holds its chain equal to the training unroll's last row.
"""

from __future__ import annotations

import torch

from specforge_trainer.models.draft import Eagle3DraftModel, TTTCache


class _DecodingCache(TTTCache):
    """The draft layer's cache protocol (``keys``, ``values``, ``mask()``) with a mask over absolute positions."""

    def __init__(self, keys: list[torch.Tensor], values: list[torch.Tensor], new_rows: int) -> None:
        past = sum(key.shape[2] for key in keys)
        device = keys[0].device if keys else torch.device("cpu")
        causal = torch.ones(new_rows, new_rows, dtype=torch.bool, device=device).tril()
        visible = torch.cat((torch.ones(new_rows, past, dtype=torch.bool, device=device), causal), dim=1)
        super().__init__(first_block_mask=visible[None, None], keys=list(keys), values=list(values))

    def mask(self) -> torch.Tensor:
        return self.first_block_mask


class ChainDrafter:
    """Greedy chain drafting for one sequence (batch of one) with a trained :class:`Eagle3DraftModel`."""

    def __init__(self, draft: Eagle3DraftModel) -> None:
        self.draft = draft.eval()
        self._keys: list[torch.Tensor] = []
        self._values: list[torch.Tensor] = []
        self._hidden: torch.Tensor | None = None  # last context row's output: the chain's first input
        self._logits: torch.Tensor | None = None
        self._draft_to_target = draft.draft_ids_to_target

    @property
    def context_length(self) -> int:
        return sum(key.shape[2] for key in self._keys)

    @torch.no_grad()
    def _rows(
        self, next_ids: torch.Tensor, hidden: torch.Tensor, cache: _DecodingCache
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the draft layer on new rows (1, n) starting at the cache's current length."""
        start = sum(key.shape[2] for key in cache.keys)
        positions = torch.arange(start, start + next_ids.shape[1], device=next_ids.device)[None]
        rotary = self.draft.rotary(hidden, positions)
        embeds = self.draft.embed_tokens(next_ids).to(hidden.dtype)
        hidden_out = self.draft.midlayer(embeds, hidden, rotary, cache)
        return hidden_out, self.draft.lm_head(self.draft.norm(hidden_out))

    @torch.no_grad()
    def extend(self, aux_hidden_states: torch.Tensor, next_ids: torch.Tensor) -> None:
        """Add verified positions: (n, 3H) target features there and (n,) the token after each."""
        hidden = self.draft.project_features(aux_hidden_states[None].to(self.draft.fc.weight.dtype))
        cache = _DecodingCache(self._keys, self._values, new_rows=next_ids.numel())
        hidden_out, logits = self._rows(next_ids[None], hidden, cache)
        self._keys, self._values = [torch.cat(cache.keys, dim=2)], [torch.cat(cache.values, dim=2)]
        self._hidden, self._logits = hidden_out[:, -1:], logits[:, -1:]

    def propose(self, steps: int) -> list[int]:
        """A chain of ``steps`` target-vocabulary tokens following the context; the cache is unchanged."""
        return self.propose_with_logits(steps)[0]

    @torch.no_grad()
    def propose_with_logits(self, steps: int) -> tuple[list[int], list[torch.Tensor]]:
        """The chain and the draft-vocabulary logits each token was chosen from."""
        if self._hidden is None or self._logits is None:
            raise RuntimeError("extend the drafter with the prompt's features before proposing")
        hidden, logits = self._hidden, self._logits
        keys, values = self._keys, self._values
        tokens: list[int] = []
        chosen_from: list[torch.Tensor] = []
        for _ in range(steps):
            token = self._draft_to_target[logits[0, -1].argmax()]
            tokens.append(int(token))
            chosen_from.append(logits[0, -1])
            if len(tokens) == steps:
                break
            cache = _DecodingCache(keys, values, new_rows=1)
            hidden, logits = self._rows(token.view(1, 1), hidden, cache)
            keys, values = cache.keys, cache.values
        return tokens, chosen_from
