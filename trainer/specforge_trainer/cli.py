"""``specforge``: run a SpecForgeRun manifest locally, or be one of the processes a run's pods start.

* ``specforge run RUN.yaml [--out DIR]`` — the whole run on this machine (the README's main job).
* ``specforge train --config RUN.yaml --out DIR [--feature-store DIR]`` — a trainer rank (torchrun
  launches several); rank 0 reports progress into the run's status when the operator's env is set.
* ``specforge produce --config RUN.yaml [--feature-store DIR]`` — offline feature precompute.
* ``specforge regenerate RUN.yaml --out FILE`` — the dataset's assistant turns answered by the target
  (resumable: an interrupted call picks up where it stopped and writes the same bytes).
* ``specforge export --to sglang|hf CHECKPOINT OUT`` — a serving directory, checked against SGLang.
* ``specforge eval RUN.yaml --checkpoint DIR [--prompts N] [--draft-steps K] [--json]
  [--allow-mismatch]`` — real speculative decoding with the trained draft on the run's held-out
  conversations: acceptance length, speed-up, lossless check (exit 3 when not lossless).

Manifest errors are printed with their field paths before any model is loaded; other bad input
(missing model directory, malformed dataset line) stops the run with a one-line error.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from specforge_api import ManifestError, SpecForgeRun, load_run_manifest
from specforge_api.pod_contract import DEFAULT_MAX_UNACKED_REFS, Env, PodEnv

from specforge_trainer.control_plane import DeploymentMode, StoreError, run_scope
from specforge_trainer.control_plane.redis_ready import DEFAULT_STORE_WAIT_S, wait_for_redis_store
from specforge_trainer.local.supervisor import ProcessFailed
from specforge_trainer.models.packaged import MODEL_CACHE_ENV, PACKAGED_MODELS, packaged_model_file

if TYPE_CHECKING:
    import torch

    from specforge_trainer.reporting.kubernetes_status import KubernetesProgressReporter
    from specforge_trainer.speculative.qualification import IntervalEvaluation

EXIT_BAD_INPUT = 2
EXIT_NOT_LOSSLESS = 3  # `specforge eval`: speculative output differed from the target's greedy output


class NotLossless(Exception):
    """Speculative decoding did not reproduce greedy decoding and the user did not allow it."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="specforge", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a SpecForgeRun manifest locally")
    run.add_argument("manifest", type=Path)
    run.add_argument("--out", type=Path, help="output directory (default: runs/<run name>/)")
    train = commands.add_parser("train", help="train as one rank of a run (what a trainer pod runs)")
    train.add_argument("--config", type=Path, required=True, help="the SpecForgeRun manifest")
    train.add_argument("--out", type=Path, required=True, help="checkpoints and metrics directory")
    train.add_argument(
        "--feature-store", type=Path, help="feature directory (default: spec.featureStore.path)"
    )
    produce = commands.add_parser("produce", help="precompute target features into the feature store")
    produce.add_argument("--config", type=Path, required=True, help="the SpecForgeRun manifest")
    produce.add_argument(
        "--feature-store", type=Path, help="feature directory (default: spec.featureStore.path)"
    )
    produce.add_argument("--shard-index", type=int, default=0)
    produce.add_argument("--num-shards", type=int, default=1)
    produce.add_argument(
        "--trainer-world-size", type=int, default=1, help="trainer ranks the committed refs are scheduled for"
    )
    produce.add_argument(
        "--max-unacked-refs",
        type=int,
        help="backpressure: pause while this producer has this many committed-but-unacked refs "
        f"(default: ${Env.MAX_UNACKED_REFS}, else {DEFAULT_MAX_UNACKED_REFS})",
    )
    regenerate = commands.add_parser(
        "regenerate", help="answer the run's dataset with its target (spec.dataset.regenerate's settings)"
    )
    regenerate.add_argument("manifest", type=Path)
    regenerate.add_argument("--out", type=Path, required=True, help="the regenerated JSONL to write")
    regenerate.add_argument("--shard-index", type=int, default=0)
    regenerate.add_argument("--num-shards", type=int, default=1)
    export = commands.add_parser(
        "export", help="write a serving directory from a checkpoint and check SGLang's EAGLE3 loader takes it"
    )
    export.add_argument(
        "--to", choices=["sglang", "hf"], required=True, help="sglang: target dtype; hf: fp32"
    )
    export.add_argument("checkpoint", type=Path, help="a checkpoint folder, e.g. runs/NAME/epoch_0_step_50")
    export.add_argument("out", type=Path, help="the serving directory to create")
    evaluate = commands.add_parser("eval", help="measure a trained draft by real speculative decoding")
    evaluate.add_argument("manifest", type=Path)
    evaluate.add_argument(
        "--checkpoint", type=Path, required=True, help="a checkpoint folder or a run's output directory"
    )
    evaluate.add_argument(
        "--prompts",
        type=int,
        help="held-out conversations to answer (default: all spec.dataset.heldOutConversations)",
    )
    evaluate.add_argument("--draft-steps", type=int, help="draft tokens per verify (default: tttLength)")
    evaluate.add_argument("--max-new-tokens", type=int, default=64, help="tokens generated per prompt")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="exit 0 even when the output is not identical to greedy decoding (a bf16 target may break "
        "a near-tie differently; the report gives each mismatch's top-two logit gap)",
    )
    fetch = commands.add_parser(
        "fetch-model", help="put a packaged built-in target (targetModel.builtin) into the model cache"
    )
    fetch.add_argument("name", choices=sorted(PACKAGED_MODELS))
    fetch.add_argument(
        "--cache", type=Path, help=f"the model cache (default: ${MODEL_CACHE_ENV} or ~/.cache/...)"
    )
    return parser


def _set_cpu_threads(run: SpecForgeRun, *, producer: bool = False) -> None:
    """On CPU, as many intra-op threads as the pod requests CPUs (trainer.resources.cpu, or the
    producers' for a producer; 500m and the default 1 mean one thread, so processes sharing a machine
    do not oversubscribe it), unless OMP_NUM_THREADS says otherwise."""
    import torch

    from specforge_trainer.train.distributed import cpu_threads

    if "OMP_NUM_THREADS" in os.environ or torch.cuda.is_available():
        return
    pool = run.spec.producers if producer and run.spec.producers is not None else run.spec.trainer
    torch.set_num_threads(cpu_threads(pool.resources.cpu))


def _train(
    run: SpecForgeRun,
    *,
    mode: DeploymentMode,
    out: Path,
    feature_store: Path,
    metadata_db_path: Path | None,
    metadata_url: str | None,
    report_to_kubernetes: bool,
) -> None:
    from specforge_api import FeatureMode

    from specforge_trainer.build import build_offline_trainer, build_online_trainer
    from specforge_trainer.reporting.kubernetes_status import KubernetesProgressReporter
    from specforge_trainer.reporting.metrics_file import MetricsFile
    from specforge_trainer.reporting.terminal import TerminalProgress
    from specforge_trainer.train.distributed import init_parallel, shutdown_parallel

    _set_cpu_threads(run)
    context = init_parallel()
    try:
        reporter = (
            KubernetesProgressReporter.from_environment()
            if report_to_kubernetes and context.is_primary
            else None
        )
        _regeneration_stage(
            run,
            feature_store,
            context.rank,
            context.world_size,
            context.device,
            answer=mode is not DeploymentMode.DISAGGREGATED,
            reporter=reporter,
        )
        if run.spec.training.feature_mode == FeatureMode.ONLINE:
            trainer = build_online_trainer(
                run, out_dir=out, mode=mode, context=context, feature_store_dir=feature_store
            )
        else:
            trainer = build_offline_trainer(
                run,
                out_dir=out,
                feature_store_dir=feature_store,
                mode=mode,
                metadata_db_path=metadata_db_path,
                metadata_url=metadata_url,
                context=context,
            )
        if context.is_primary:
            trainer.sinks += [MetricsFile(out), TerminalProgress(trainer.total_steps)]
            if mode is DeploymentMode.DISAGGREGATED:
                from specforge_trainer.features.retention import ReleaseCheckpointedFeatures

                trainer.sinks.append(
                    ReleaseCheckpointedFeatures(trainer.controller, trainer.ref_source.store, out)
                )
            if reporter is not None:
                trainer.sinks.append(reporter)
            if run.spec.evaluation is not None:
                trainer.checkpoint_watchers += _evaluation_watchers(run, out, context.device, reporter)
        trainer.train()
    finally:
        shutdown_parallel()
    if context.is_primary and run.spec.evaluation is not None:
        _qualification_stage(run, out, context.device, reporter)


def _evaluation_watchers(
    run: SpecForgeRun, out: Path, device: torch.device, reporter: KubernetesProgressReporter | None
) -> list[IntervalEvaluation]:
    """Start the run's evaluation ledger (empty unless resuming) and, with evaluation.intervalSteps,
    measure checkpoints as they are saved."""
    from specforge_trainer.speculative.qualification import EvaluationLedger, IntervalEvaluation
    from specforge_trainer.train.checkpoint import latest_checkpoint

    if latest_checkpoint(out) is None:
        EvaluationLedger(out).clear()  # a fresh start's checkpoint names would match an old run's entries
    assert run.spec.evaluation is not None
    if not run.spec.evaluation.interval_steps:
        return []
    publish = None if reporter is None else functools.partial(reporter.on_qualification, final=False)
    return [IntervalEvaluation(run, out, device, publish)]


def _qualification_stage(
    run: SpecForgeRun, out: Path, device: torch.device, reporter: KubernetesProgressReporter | None
) -> None:
    """After training: real speculative decoding on the held-out conversations, then the export."""
    from specforge_trainer.speculative.evaluation import format_report
    from specforge_trainer.speculative.qualification import qualify

    if reporter is not None:
        reporter.on_stage("Evaluating", 0, 1)
    result = qualify(run, out, device)
    assert result is not None
    print(format_report(result.report), file=sys.stderr)
    state = "qualifies" if result.qualified else "does not qualify"
    print(f"draft {state}: {result.verdict()}", file=sys.stderr)
    if result.export_path is not None:
        print(f"exported ({result.export_format}): {result.export_path}", file=sys.stderr)
    if reporter is not None:
        reporter.on_qualification(result)


def _regeneration_stage(
    run: SpecForgeRun,
    feature_store: Path,
    shard_index: int,
    num_shards: int,
    device: torch.device,
    *,
    answer: bool,
    reporter: KubernetesProgressReporter | None = None,
) -> None:
    """Take part in the run's regeneration stage, if it has one: answer this shard when ``answer``
    (producers in disaggregated mode, trainer ranks in the colocated ones), then wait for every shard."""
    if run.spec.dataset.regenerate is None:
        return
    from specforge_trainer.regeneration import ensure_regenerated

    def progress(done: int, total: int) -> None:
        logging.getLogger("specforge.regenerate").info("regenerating: %d/%d conversations", done, total)
        if reporter is not None:
            reporter.on_stage("Regenerating", done, total)

    path = ensure_regenerated(
        run,
        feature_store,
        shard_index=shard_index,
        num_shards=num_shards,
        answer=answer,
        device=device,
        progress=progress,
    )
    print(f"regenerated dataset: {path}", file=sys.stderr)


def _run_command(args: argparse.Namespace) -> None:
    run = load_run_manifest(args.manifest)
    out = args.out or Path("runs") / run.name
    mode = run.spec.deployment_mode
    if mode.durable:
        from specforge_trainer.local.launch import launch_local_run

        print(f"specforge run: {run.name} ({mode.value}, processes) -> {out}", file=sys.stderr)
        launch_local_run(run, args.manifest, out, metadata_url=PodEnv.from_environ().metadata_url)
        print(f"outputs in {out}: checkpoints, metrics.jsonl, loss.png, logs/", file=sys.stderr)
        return
    print(
        f"specforge run: {run.name} ({mode.value}, {run.spec.training.feature_mode.value}) -> {out}",
        file=sys.stderr,
    )
    _train(
        run,
        mode=mode,
        out=out,
        feature_store=out / "features",
        report_to_kubernetes=False,
        metadata_db_path=None,
        metadata_url=None,
    )
    print(f"outputs in {out}: checkpoints, metrics.jsonl, loss.png", file=sys.stderr)


def _train_command(args: argparse.Namespace) -> None:
    run = load_run_manifest(args.config)
    env = PodEnv.from_environ()
    mode = env.deployment_mode or run.spec.deployment_mode
    if mode is not run.spec.deployment_mode:
        raise ValueError(f"{Env.DEPLOYMENT_MODE}={mode.value} disagrees with spec.deploymentMode")
    metadata_url = env.metadata_url
    if metadata_url and mode.durable:
        wait_for_redis_store(metadata_url, run_scope(run), _store_wait_s(env))
    _train(
        run,
        mode=mode,
        out=args.out,
        feature_store=args.feature_store or Path(run.spec.feature_store.path),
        metadata_db_path=None,
        metadata_url=metadata_url,
        report_to_kubernetes=True,
    )


def _produce_command(args: argparse.Namespace) -> None:
    from specforge_trainer.features.precompute import produce_features

    run = load_run_manifest(args.config)
    _set_cpu_threads(run, producer=True)
    env = PodEnv.from_environ()
    metadata_url = env.metadata_url
    mode = run.spec.deployment_mode
    feature_store = args.feature_store or Path(run.spec.feature_store.path)
    from specforge_trainer.train.distributed import single_process_device

    _regeneration_stage(
        run, feature_store, args.shard_index, args.num_shards, single_process_device(), answer=True
    )
    if mode.durable and metadata_url:
        _stream_produce(run, args, mode, metadata_url)
        return
    result = produce_features(  # no durable store: only fill the feature store for `specforge train`
        run,
        feature_store_dir=args.feature_store or Path(run.spec.feature_store.path),
        controller=None,
        trainer_world_size=args.trainer_world_size,
        shard_index=args.shard_index,
        num_shards=args.num_shards,
    )
    print(
        f"produced {result.produced} samples ({result.bytes_per_sample / 1024:.1f} KiB of features each), "
        f"committed {result.committed} refs"
    )


def _stream_produce(
    run: SpecForgeRun, args: argparse.Namespace, mode: DeploymentMode, metadata_url: str
) -> None:
    """A producer of a durable run: stream features and refs while the ranks train (backpressured)."""
    from specforge_trainer.control_plane import resolve_control_plane
    from specforge_trainer.features.streaming import stream_shard_of_run

    wait_for_redis_store(metadata_url, run_scope(run), _store_wait_s(PodEnv.from_environ()))
    controller, _ = resolve_control_plane(mode, run_scope(run), metadata_url=metadata_url)
    try:
        result = stream_shard_of_run(
            run,
            feature_store_dir=args.feature_store or Path(run.spec.feature_store.path),
            controller=controller,
            trainer_world_size=args.trainer_world_size,
            shard_index=args.shard_index,
            num_shards=args.num_shards,
            max_unacked_refs=args.max_unacked_refs
            or PodEnv.from_environ().max_unacked_refs
            or DEFAULT_MAX_UNACKED_REFS,
        )
    finally:
        controller.close()
    print(
        f"producer {args.shard_index}/{args.num_shards}: computed {result.computed} features, committed "
        f"{result.committed} refs, {result.skipped} already committed, {result.waited_s:.1f}s paused"
    )


def _store_wait_s(env: PodEnv) -> float:
    return env.store_wait_s if env.store_wait_s is not None else DEFAULT_STORE_WAIT_S


def _regenerate_command(args: argparse.Namespace) -> None:
    from specforge_trainer.regeneration import answer_shard
    from specforge_trainer.train.distributed import single_process_device

    run = load_run_manifest(args.manifest)
    _set_cpu_threads(run)
    log = logging.getLogger("specforge.regenerate")
    result = answer_shard(
        run,
        args.out,
        shard_index=args.shard_index,
        num_shards=args.num_shards,
        device=single_process_device(),
        progress=lambda done, total: log.info("regenerating: %d/%d conversations", done, total),
    )
    state = "written" if result.complete else "not complete yet (other shards still answering)"
    print(
        f"{result.path}: {result.conversations} conversations, {result.answered_here} answered now; {state}"
    )


def _export_command(args: argparse.Namespace) -> None:
    from specforge_trainer.export import export_checkpoint

    out = export_checkpoint(args.checkpoint, args.out, to=args.to)
    print(f"exported {args.checkpoint} to {out} ({args.to}); it passes SGLang's EAGLE3 loader check")


def _fetch_model_command(args: argparse.Namespace) -> None:
    print(packaged_model_file(args.name, args.cache))


def _eval_command(args: argparse.Namespace) -> None:
    import json

    from specforge_trainer.speculative.evaluation import evaluate_run, format_report

    run = load_run_manifest(args.manifest)
    _set_cpu_threads(run)
    from specforge_trainer.train.distributed import single_process_device

    device = single_process_device()
    report = evaluate_run(
        run,
        args.checkpoint,
        prompts=args.prompts,
        draft_steps=args.draft_steps,
        max_new_tokens=args.max_new_tokens,
        device=device,
    )
    print(json.dumps(report.to_json()) if args.json else format_report(report))
    if not report.identical_to_greedy and not args.allow_mismatch:
        raise NotLossless(
            f"speculative decoding differs from greedy decoding on prompts {report.mismatched_prompts} "
            "(see the report); pass --allow-mismatch to accept near-ties of a low-precision target"
        )


_COMMANDS = {
    "run": _run_command,
    "train": _train_command,
    "produce": _produce_command,
    "regenerate": _regenerate_command,
    "export": _export_command,
    "eval": _eval_command,
    "fetch-model": _fetch_model_command,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        _COMMANDS[args.command](args)
    except (ManifestError, ValueError, FileNotFoundError, TimeoutError, StoreError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ProcessFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except NotLossless as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_NOT_LOSSLESS
    except KeyboardInterrupt:
        print("interrupted: every process of the run was stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
