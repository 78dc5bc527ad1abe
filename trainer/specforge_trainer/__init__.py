"""SpecForge DataFlow runtime: target-model features flow to an EAGLE3 draft trainer through a control plane.

The control plane (:mod:`specforge_trainer.control_plane`) imports only the standard library and
redis-py, so producers and tooling can use it without torch.
"""

__version__ = "0.1.0"
