"""Models: the frozen target (feature source) and the EAGLE3 draft being trained."""
