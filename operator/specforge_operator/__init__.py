"""The SpecForgeRun operator: API models, rendering, status derivation and kopf handlers.

Importing this package (and :mod:`specforge_api`) needs only pydantic, so the trainer CLI
can validate a run manifest with the same models the CRD is generated from.
"""

__version__ = "0.1.0"
