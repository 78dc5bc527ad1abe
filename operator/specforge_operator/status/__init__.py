"""Status derivation: from observed children to phase, conditions and events."""

from specforge_operator.status.derive import Event, Observed, derive_status

__all__ = ["Event", "Observed", "derive_status"]
