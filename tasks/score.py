"""Prefect tasks of the `score` flow: the champion's model and lineage, streamed or partitioned
scoring, the scoring summary.

Tasks that take DataFrames or models use `cache_policy=NONE`: hashing a large frame for a cache
key is costly and caching is not wanted for these steps. Clients (MLflow, boto3) are built
inside the task bodies, never passed in.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from driftloop.configs.settings import Settings
from driftloop.tasks.adapters import registry, storage
from driftloop.tasks.adapters.partitions import (
    Partition,
    PartitionKeys,
    PartitionOutcome,
    inspect,
    plan,
    score_one,
    settle,
)
from driftloop.tasks.adapters.registry import ModelVersionInfo
from driftloop.tasks.adapters.streaming import StreamOutcome
from driftloop.tasks.adapters.streaming import score_stream as stream
from driftloop.tasks.common import IO_RETRIES, artifact_key, current_run_id
from driftloop.tasks.core.scoring import PredictionMeta, now_utc

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


@task(name="publish-scoring", cache_policy=NONE)
def publish_scoring(model_name: str, markdown: str) -> None:
    create_markdown_artifact(key=artifact_key("scoring", model_name), markdown=markdown)


_MODELS: dict[tuple[str, str, str], Pipeline] = {}


_MODELS_LOCK = threading.Lock()


def scoring_model(champion: ModelVersionInfo, settings: Settings) -> Pipeline:
    """The champion's pipeline, loaded once per process (per Dask worker), keyed by its URI.

    Why: partition tasks run on Dask workers; shipping the fitted model with every task (or
    loading it in every task) would cost more than scoring a partition.
    """
    key = (settings.tracking.uri, champion.uri, champion.tag("model_sha256"))
    with _MODELS_LOCK:
        if key not in _MODELS:
            registry.configure_tracking(settings.tracking, settings.registry)
            _MODELS.clear()  # one champion at a time per process
            _MODELS[key] = registry.load_version(champion)
        return _MODELS[key]


def prediction_meta(champion: ModelVersionInfo, source: str, input_digest: str) -> PredictionMeta:
    return PredictionMeta(
        model_name=champion.name,
        model_version=champion.version,
        model_run_id=champion.run_id,
        input_uri=source,
        input_digest=input_digest,
        scored_at=now_utc(),
    )


def _publish_docs(docs_dir: str | None, lake: storage.Lake, day: date, run_id: str) -> str | None:
    if not docs_dir:
        return None
    site = lake.data_docs(day, run_id)
    storage.upload_folder(docs_dir, site)
    shutil.rmtree(docs_dir, ignore_errors=True)
    return storage.join(site, "index.html")


@task(name="score-stream", task_run_name="score-stream-{source}", cache_policy=NONE, **IO_RETRIES)
def score_stream(
    champion: ModelVersionInfo,
    settings: Settings,
    source: str,
    day: date,
    output_uri: str | None,
) -> StreamOutcome:
    """Validate, predict and write the input batch by batch (memory: one batch, any input size).

    Predictions appear at `output_uri` (None: dry run) only when the input passed its contract;
    the quarantine is always kept. Data Docs, if enabled, describe the first batch.
    """

    lake = storage.Lake(settings.storage.root, settings.dataset.name)
    run_id = current_run_id()
    docs_dir = None
    if settings.dataset.data_docs != "never":
        docs_dir = tempfile.mkdtemp(prefix="driftloop-data-docs-")
    outcome = stream(
        source=source,
        model=scoring_model(champion, settings),
        dataset=settings.dataset,
        meta=prediction_meta(champion, source, storage.sha256_of(source)),
        output_uri=output_uri,
        quarantine_uri=lake.quarantine(day, run_id),
        now=now_utc(),
        batch_rows=settings.scoring.batch_rows,
        chunk_rows=settings.storage.score_chunk_rows,
        prefetch_batches=settings.scoring.prefetch_batches,
        docs_dir=docs_dir,
        run_id=run_id,
        day=day,
    )
    if docs_dir and outcome.data_docs_dir is None:  # no site: a clean input under "failures"
        shutil.rmtree(docs_dir, ignore_errors=True)
    docs_uri = _publish_docs(outcome.data_docs_dir, lake, day, run_id)
    return outcome.model_copy(update={"data_docs_dir": docs_uri})


@task(name="plan-partitions", task_run_name="plan-partitions-{source}", **IO_RETRIES)
def plan_partitions(source: str, settings: Settings) -> list[Partition]:
    return plan(source, settings.scoring.partition_row_groups)


@task(
    name="inspect-partition",
    task_run_name="inspect-partition-{part.index}",
    cache_policy=NONE,
    **IO_RETRIES,
)
def inspect_partition(part: Partition, settings: Settings, digest: str | None) -> PartitionKeys:
    return inspect(part, settings.dataset, settings.scoring.batch_rows, digest)


@task(
    name="score-partition",
    task_run_name="score-partition-{part.index}",
    cache_policy=NONE,
    **IO_RETRIES,
)
def score_partition(
    part: Partition,
    champion: ModelVersionInfo,
    settings: Settings,
    keys: PartitionKeys,
    prior: dict[str, np.ndarray],
    day: date,
    run_id: str,
    dry_run: bool,
) -> PartitionOutcome:
    """One partition through the streaming scorer, on whichever worker runs it."""

    lake = storage.Lake(settings.storage.root, settings.dataset.name)
    return score_one(
        part,
        keys,
        prior,
        model=lambda: scoring_model(champion, settings),
        champion=champion,
        settings=settings,
        output_uri=None if dry_run else part.output_uri(lake, settings.registry.model_name, day),
        quarantine_uri=part.quarantine_uri(lake, day, run_id),
        meta=prediction_meta(champion, part.uri, keys.digest),
        run_id=run_id,
        day=day,
    )


@task(name="settle-partitions", cache_policy=NONE, **IO_RETRIES)
def settle_partitions(
    outcomes: list[PartitionOutcome], settings: Settings, day: date, source: str, passed: bool
) -> list[str]:
    """Exactly one file per partition: stale parts and crashed writes' temp files removed;
    all parts removed when the input as a whole failed its contract. Returns what was removed."""

    lake = storage.Lake(settings.storage.root, settings.dataset.name)
    folder = lake.prediction_parts(settings.registry.model_name, day)
    return settle(folder, outcomes, keep=passed)
