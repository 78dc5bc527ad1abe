"""resolve_control_plane: DeploymentMode → (controller, durable_ack). The mode is load-bearing here."""

from __future__ import annotations

import os

from specforge_api.modes import DeploymentMode

from .controller import DataFlowController
from .stores.base import MetadataStore
from .stores.memory import InMemoryMetadataStore
from .stores.noop import NoOpMetadataStore
from .stores.sqlite import SQLiteMetadataStore


def resolve_control_plane(
    deployment_mode: DeploymentMode | str,
    run_id: str,
    *,
    metadata_db_path: str | os.PathLike[str] | None = None,
    metadata_url: str | None = None,
) -> tuple[DataFlowController, bool]:
    """The controller a run of ``deployment_mode`` uses, and whether its trainer acks durably.

    ``local_colocated`` gets the NoOp store and no durable ack, whatever path or URL is given (a
    single process has nothing to recover). The durable modes get Redis when a URL is given, else
    SQLite when a path is given, else an in-memory store, and ack at the optimizer boundary.
    """
    mode = DeploymentMode.parse(deployment_mode)
    if not mode.durable:
        return DataFlowController(run_id, metadata_store=NoOpMetadataStore()), False
    store: MetadataStore
    if metadata_url:
        from .stores.redis import RedisMetadataStore  # redis-py only where a URL asks for it

        store = RedisMetadataStore(metadata_url, run_id=run_id)
    elif metadata_db_path:
        store = SQLiteMetadataStore(metadata_db_path, run_id=run_id)
    else:
        store = InMemoryMetadataStore()
    return DataFlowController(run_id, metadata_store=store), True
