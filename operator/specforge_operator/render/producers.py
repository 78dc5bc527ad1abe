"""Feature producers of a disaggregated run: an indexed batch/v1 Job, one index per dataset shard.

A Job rather than a Deployment because producers have a finite amount of work: each exits when its shard's
features are committed, freeing its GPUs before the trainer finishes.
"""

from __future__ import annotations

from typing import Any

from specforge_api.run import SpecForgeRun

from specforge_operator.render.job import job_manifest
from specforge_operator.render.meta import ChildNames, labels
from specforge_operator.render.pod import pod_template, producer_process_of
from specforge_operator.render.store import MetadataStoreConnection

PRODUCER_COMPONENT = "producer"


def producer_job(run: SpecForgeRun, store: MetadataStoreConnection | None) -> dict[str, Any]:
    pool = run.spec.producers
    if pool is None:
        raise ValueError(f"run {run.name} has no producers; only disaggregated runs render a producer Job")
    template = pod_template(
        run,
        pool=pool,
        container_name="producer",
        process=producer_process_of(run, store),
        labels=labels(run, PRODUCER_COMPONENT),
        restart_policy="Never",
        store=store,
    )
    # Always indexed: the completion index is the producer's shard ($(JOB_COMPLETION_INDEX) in its argv).
    return job_manifest(
        run,
        name=ChildNames(run.name).producers,
        component=PRODUCER_COMPONENT,
        pool=pool,
        template=template,
        indexed=True,
    )
