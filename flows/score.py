"""score: the champion scores a daily batch; every prediction says which model made it.

Two ways to read a large input (`scoring.mode` or the `mode` parameter):

- stream (default): one process validates and predicts the input batch by batch and writes
  predictions/<model>/<day>.parquet; memory follows `scoring.batch_rows`, not the input size;
- partitioned: one task per input partition (file of a folder/prefix, or row groups of one
  file) on the `dask` cluster, writing predictions/<model>/<day>/part-NNNNN.parquet; a re-run
  after a crash keeps finished parts and leaves exactly one file per partition.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from prefect import flow

from driftloop.configs.settings import Settings, load_settings
from driftloop.flows.params import Day, Overrides, Profile, flow_timeout, run_name, yesterday
from driftloop.tasks import common
from driftloop.tasks import score as steps
from driftloop.tasks.adapters.oncall import on_failure_hook
from driftloop.tasks.adapters.partitions import Partition, PartitionOutcome
from driftloop.tasks.adapters.registry import ModelVersionInfo
from driftloop.tasks.adapters.storage import Lake
from driftloop.tasks.core.contract import ValidatedBatch, ValidationResult
from driftloop.tasks.core.results import ScoreSummary


@flow(
    name="score",
    timeout_seconds=flow_timeout("score"),
    flow_run_name=run_name("score", "day"),
    log_prints=True,
    on_failure=[on_failure_hook],
    on_crashed=[on_failure_hook],
)
def score(
    day: Day | None = None,
    source: str | None = None,
    profile: Profile | None = None,
    overrides: Overrides = None,
    dry_run: bool = False,
    mode: Literal["stream", "partitioned"] | None = None,
) -> ScoreSummary:
    """Validate inputs with the contract (minus the target), predict, write predictions.

    Args:
        day: the day of the batch to score (YYYY-MM-DD; empty: yesterday, UTC).
        source: a file, folder or s3:// URI/prefix to score instead of the day's file under
            raw/ in the lake (a folder/prefix needs mode "partitioned").
        profile: config profile, configs/PROFILE.yaml read over base.yaml, e.g. prod (empty:
            the worker's DRIFTLOOP_PROFILE, else local).
        overrides: dotted config keys for this run only, validated like the YAML, e.g.
            {"gate.metrics.roc_auc.threshold": 0.7}.
        dry_run: validate and predict, but write no predictions (quarantine is still kept).
        mode: "stream" (one process, batch by batch, one output file) or "partitioned" (one
            task per partition on the Dask cluster, one output file per partition); empty:
            the config's scoring.mode.
    """
    day = day or yesterday()
    settings = load_settings(profile, overrides)
    mode = mode or settings.scoring.mode
    champion = common.require_champion(settings)
    uri = source or common.locate_raw(
        settings.storage.root, settings.dataset.name, day, settings.dataset.raw_pattern
    )
    if mode == "partitioned":
        summary = score_partitioned(settings, champion, uri, day, dry_run)
    else:
        summary = score_streamed(settings, champion, uri, day, dry_run)
    steps.publish_scoring(settings.registry.model_name, summary_markdown(summary))
    if settings.drift.report != "decisions":  # a catch-up's earlier day: its check decides
        common.publish_loop_status(settings)
    return summary


def score_streamed(
    settings: Settings, champion: ModelVersionInfo, uri: str, day: date, dry_run: bool
) -> ScoreSummary:
    lake = Lake(settings.storage.root, settings.dataset.name)
    target = None if dry_run else lake.predictions(settings.registry.model_name, day)
    outcome = steps.score_stream(champion, settings, uri, day, target)
    verdict = contract_only(outcome.result)
    common.enforce_contract(
        verdict, settings.dataset.name, outcome.quarantine_uri, outcome.data_docs_dir
    )
    return ScoreSummary(
        day=day,
        source=uri,
        output_uri=outcome.output_uri or "(dry run: not written)",
        model_version=champion.version,
        rows=outcome.rows_scored,
        rows_quarantined=outcome.result.rows_quarantined,
        **ScoreSummary.predictions_of(
            settings.dataset.task,
            outcome.rows_scored,
            outcome.positives,
            outcome.score_sum,
            outcome.class_counts,
        ),
    )


def score_partitioned(
    settings: Settings, champion: ModelVersionInfo, uri: str, day: date, dry_run: bool
) -> ScoreSummary:
    from driftloop.tasks.adapters.partitions import summary_counts
    from driftloop.tasks.adapters.scaleout import dask_task_runner
    from driftloop.tasks.core.contract import merge_results

    plan = steps.plan_partitions(uri, settings)
    whole_file = plan[0].row_groups is not None
    digest = common.digest(uri) if whole_file else None
    fan_out = score_partitions.with_options(task_runner=dask_task_runner(settings.dask))
    outcomes = fan_out(plan, champion, settings, day, digest, common.current_run_id(), dry_run)
    verdict = contract_only(merge_results([o.result for o in outcomes], settings.dataset, uri))
    lake = Lake(settings.storage.root, settings.dataset.name)
    quarantined = [o.quarantine_uri for o in outcomes if o.quarantine_uri]
    if not dry_run:
        steps.settle_partitions(outcomes, settings, day, uri, verdict.result.success)
    common.enforce_contract(verdict, settings.dataset.name, ", ".join(quarantined) or None)
    counts = summary_counts(outcomes)
    return ScoreSummary(
        day=day,
        source=uri,
        output_uri="(dry run: not written)"
        if dry_run
        else lake.prediction_parts(settings.registry.model_name, day),
        model_version=champion.version,
        rows=int(counts["rows"]),
        rows_quarantined=verdict.result.rows_quarantined,
        **ScoreSummary.predictions_of(
            settings.dataset.task,
            counts["rows"],
            counts["positives"],
            counts["score_sum"],
            counts["class_counts"],
        ),
        mode="partitioned",
        partitions=len(outcomes),
        partitions_reused=sum(o.skipped for o in outcomes),
    )


@flow(name="score-partitions", log_prints=True)
def score_partitions(
    plan: list[Partition],
    champion: ModelVersionInfo,
    settings: Settings,
    day: date,
    digest: str | None,
    run_id: str,
    dry_run: bool,
) -> list[PartitionOutcome]:
    """Fan out over the partitions on the task runner chosen by the caller (Dask)."""
    from driftloop.tasks.adapters.streaming import cross_partition_duplicates

    inspected = [steps.inspect_partition.submit(part, settings, digest) for part in plan]
    keys = [future.result() for future in inspected]
    priors = cross_partition_duplicates([k.hashes for k in keys])
    scored = [
        steps.score_partition.submit(part, champion, settings, k, prior, day, run_id, dry_run)
        for part, k, prior in zip(plan, keys, priors, strict=True)
    ]
    return [future.result() for future in scored]


def contract_only(result: ValidationResult) -> ValidatedBatch:
    """The verdict in the shape the validation publishing tasks take (no frames attached)."""
    import pandas as pd

    return ValidatedBatch(valid=pd.DataFrame(), quarantine=pd.DataFrame(), result=result)


def summary_markdown(summary: ScoreSummary) -> str:
    parts = ""
    if summary.partitions is not None:
        parts = (
            f"| partitions | {summary.partitions} "
            f"({summary.partitions_reused or 0} finished parts kept) |\n"
        )
    return (
        f"## Scoring {summary.day}\n\n| field | value |\n|---|---|\n"
        f"| model version | {summary.model_version} |\n| rows scored | {summary.rows} |\n"
        f"| rows quarantined | {summary.rows_quarantined} |\n"
        f"| predictions | {summary.predictions_text()} |\n"
        f"| input | `{summary.source}` |\n| output | `{summary.output_uri}` |\n{parts}"
    )


if __name__ == "__main__":
    import sys

    print(score(date.fromisoformat(sys.argv[1])))
