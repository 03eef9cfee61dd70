"""Partitioned scoring: one input partition -> one output file, safe to re-run after a crash.

A partition is one file of a folder/prefix, or a run of row groups of one large parquet file.
Each is scored by the streaming scorer (`tasks/adapters/streaming.py`) into
``predictions/<model>/<day>/part-NNNNN.parquet``, written atomically (temp file + rename, or
one S3 upload), with a fingerprint of what determined it (input digest and rows, model
version and digest, contract) and its outcome in the parquet footer. A re-run therefore:

- keeps a finished part whose fingerprint matches (same input, model, contract): its content
  is exactly what a new run would write, minus the scoring time;
- rewrites a part whose fingerprint differs, or that is missing or unreadable;
- removes temp files of crashed writes and parts that belong to no partition of this input
  (`settle`), so the folder ends with exactly one file per partition and no duplicates.

Uniqueness of id values across partitions is decided before scoring (`inspect` gives each
partition's value hashes, `streaming.cross_partition_duplicates` the repeats), so the parallel
result equals the single-process result row for row.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel

from driftloop.configs.settings import DatasetSettings, Settings
from driftloop.tasks.adapters import storage
from driftloop.tasks.adapters.streaming import (
    METADATA_KEY,
    OUTCOME_KEY,
    fingerprint,
    iter_raw_batches,
    score_stream,
    typed_hashes,
    unique_columns,
)
from driftloop.tasks.core.contract import ValidationResult
from driftloop.tasks.core.scoring import PredictionMeta, now_utc

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from driftloop.tasks.adapters.registry import ModelVersionInfo


class Partition(BaseModel):
    """One unit of parallel work; `row_offset` keeps quarantine row numbers file-relative."""

    index: int
    uri: str
    row_groups: list[int] | None = None
    row_offset: int = 0

    @property
    def name(self) -> str:
        return f"part-{self.index:05d}.parquet"

    def output_uri(self, lake: storage.Lake, model: str, day: date) -> str:
        return storage.join(lake.prediction_parts(model, day), self.name)

    def quarantine_uri(self, lake: storage.Lake, day: date, run_id: str) -> str:
        return storage.join(lake.quarantine_parts(day, run_id), self.name)


@dataclass(frozen=True)
class PartitionKeys:
    """What the planner learns before scoring: the input's digest and its unique values."""

    digest: str
    hashes: dict[str, np.ndarray]


class PartitionOutcome(BaseModel):
    index: int
    source: str
    output_uri: str | None
    quarantine_uri: str | None
    result: ValidationResult
    rows_scored: int
    positives: int
    score_sum: float
    class_counts: dict[str, int] = {}
    skipped: bool = False
    seconds: dict[str, float] = {}


def plan(source: str, row_groups_per_partition: int) -> list[Partition]:
    """Partitions of a folder/prefix (one per .parquet/.csv file, in name order) or of one
    file (runs of `row_groups_per_partition` row groups; a CSV file is one partition)."""
    if row_groups_per_partition < 1:
        raise ValueError(f"row_groups_per_partition must be >= 1, got {row_groups_per_partition}")
    if _is_frame_file(source):
        suffix, compression = storage.frame_format(source)
        if suffix == ".csv" or compression:  # no row groups to split by without reading it
            return [Partition(index=0, uri=source)]
        sizes = storage.parquet_row_groups(source)
        if not sizes:
            return [Partition(index=0, uri=source)]  # no rows: the contract will say so
        parts, offset = [], 0
        for index, start in enumerate(range(0, len(sizes), row_groups_per_partition)):
            groups = list(range(start, min(start + row_groups_per_partition, len(sizes))))
            parts.append(Partition(index=index, uri=source, row_groups=groups, row_offset=offset))
            offset += sum(sizes[g] for g in groups)
        return parts
    files = [u for u in storage.list_uris(source) if _is_frame_file(u)]
    if not files:
        raise storage.NotFoundError(
            f"{source} holds no .parquet or .csv files (compressed or not) to score: point "
            "`source` at a file, or at a folder/prefix that holds the day's files"
        )
    return [Partition(index=i, uri=uri) for i, uri in enumerate(files)]


def _is_frame_file(uri: str) -> bool:
    """Named as a file the scorer reads: .csv or .parquet, compressed or not (`day.csv.gz`)."""
    try:
        storage.frame_format(uri)
    except storage.StorageError:
        return False
    return True


def inspect(
    part: Partition, dataset: DatasetSettings, batch_rows: int, digest: str | None = None
) -> PartitionKeys:
    """The partition's input digest (given when the whole file was digested once) and the
    hashes of its unique columns' typed values, read batch by batch."""
    columns = unique_columns(dataset)
    hashes: dict[str, list[np.ndarray]] = {c: [] for c in columns}
    if columns:
        for raw in iter_raw_batches(part.uri, batch_rows, part.row_groups):
            for column in columns:
                if column in raw.columns:  # a missing column fails later, with the contract
                    hashes[column].append(typed_hashes(raw, dataset, column))
    return PartitionKeys(
        digest=digest or storage.sha256_of(part.uri),
        hashes={
            c: np.concatenate(h) if h else np.empty(0, dtype=np.uint64) for c, h in hashes.items()
        },
    )


def partition_fingerprint(
    part: Partition,
    keys: PartitionKeys,
    prior: dict[str, np.ndarray],
    champion: ModelVersionInfo,
    settings: Settings,
) -> str:
    """Everything that determines a part's content except the scoring time."""
    return fingerprint(
        uri=part.uri,
        row_groups=part.row_groups,
        row_offset=part.row_offset,
        digest=keys.digest,
        model=champion.uri,
        model_run=champion.run_id,
        model_sha256=champion.tag("model_sha256"),
        contract=settings.dataset.model_dump(mode="json"),
        chunk_rows=settings.storage.score_chunk_rows,
        prior={c: np.sort(h).tolist() for c, h in sorted(prior.items())},
    )


def finished(output_uri: str, expected: str) -> dict[str, Any] | None:
    """The stored outcome of a finished part with this fingerprint, else None."""
    stamp = storage.parquet_key_value(output_uri, METADATA_KEY)
    if stamp != expected:
        return None
    outcome = storage.parquet_key_value(output_uri, OUTCOME_KEY)
    return None if outcome is None else json.loads(outcome)


def score_one(
    part: Partition,
    keys: PartitionKeys,
    prior: dict[str, np.ndarray],
    *,
    model: Callable[[], Pipeline],
    champion: ModelVersionInfo,
    settings: Settings,
    output_uri: str | None,
    quarantine_uri: str,
    meta: PredictionMeta,
    run_id: str | None = None,
    day: date | None = None,
) -> PartitionOutcome:
    """Score one partition, or keep its finished part when nothing that shapes it changed."""
    stamp = partition_fingerprint(part, keys, prior, champion, settings)
    if output_uri is not None:
        done = finished(output_uri, stamp)
        if done is not None:
            return PartitionOutcome(
                index=part.index, source=part.uri, output_uri=output_uri, skipped=True, **done
            )
    outcome = score_stream(
        source=part.uri,
        model=model(),
        dataset=settings.dataset,
        meta=meta,
        output_uri=output_uri,
        quarantine_uri=quarantine_uri,
        now=now_utc(),
        batch_rows=settings.scoring.batch_rows,
        chunk_rows=settings.storage.score_chunk_rows,
        prefetch_batches=settings.scoring.prefetch_batches,
        row_groups=part.row_groups,
        row_offset=part.row_offset,
        prior=prior,
        metadata={METADATA_KEY: stamp},
        day=day,
        write_when_blocked=True,  # judged with the other partitions; `settle` removes it then
        run_id=run_id,
    )
    return PartitionOutcome(
        index=part.index,
        source=part.uri,
        output_uri=outcome.output_uri,
        quarantine_uri=outcome.quarantine_uri,
        result=outcome.result,
        rows_scored=outcome.rows_scored,
        positives=outcome.positives,
        score_sum=outcome.score_sum,
        class_counts=outcome.class_counts,
        seconds=outcome.seconds,
    )


def settle(folder: str, outcomes: list[PartitionOutcome], keep: bool) -> list[str]:
    """Leave exactly the parts of `outcomes` in `folder` (none when `keep` is False): stale
    parts of an earlier, different input and temp files of crashed writes are removed."""
    wanted = {o.output_uri for o in outcomes if o.output_uri} if keep else set()
    stale = [u for u in storage.list_uris(folder, ".parquet") if u not in wanted]
    removed = [u for u in stale + storage.list_temp_files(folder) if storage.delete(u)]
    return removed


def summary_counts(outcomes: list[PartitionOutcome]) -> dict[str, Any]:
    """Rows, predicted positives, the output's sum and the rows per predicted class (multiclass)
    over all partitions."""
    classes: dict[str, int] = {}
    for outcome in outcomes:
        for name, n in outcome.class_counts.items():
            classes[name] = classes.get(name, 0) + n
    return {
        "rows": sum(o.rows_scored for o in outcomes),
        "positives": sum(o.positives for o in outcomes),
        "score_sum": sum(o.score_sum for o in outcomes),
        "class_counts": classes,
    }
