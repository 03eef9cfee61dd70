"""Prefect tasks of the `ingest` flow: validate a raw batch, store its curated rows and quarantine.

Tasks that take DataFrames or models use `cache_policy=NONE`: hashing a large frame for a cache
key is costly and caching is not wanted for these steps. Clients (MLflow, boto3) are built
inside the task bodies, never passed in.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd
from prefect import task
from prefect.cache_policies import NONE

from driftloop.configs.settings import DatasetSettings
from driftloop.tasks.adapters import day_states, storage
from driftloop.tasks.adapters.validation import validate_frame
from driftloop.tasks.common import IO_RETRIES, current_run_id
from driftloop.tasks.core.contract import DataContractError, ValidatedBatch
from driftloop.tasks.core.results import IngestSummary

# the sha256 of the raw input a curated file was made from, in the curated file's footer
INPUT_DIGEST_KEY = "driftloop.input_digest"


@dataclass(frozen=True)
class EarlierDays:
    """What the days before a batch left in the lake, to catch a batch delivered twice."""

    days: list[date] = field(default_factory=list)  # the days looked at, oldest first
    ids: pd.Series | None = None  # id -> the (earliest) day it was curated, ISO text
    digests: dict[str, str] = field(default_factory=dict)  # input sha256 -> its day


def recall_earlier_days(lake: storage.Lake, day: date, dataset: DatasetSettings) -> EarlierDays:
    """The ids curated on the `dataset.id_lookback_days` days before `day`, and the input
    digests those days were curated from (a day not curated is skipped)."""
    days = [day - timedelta(days=i) for i in range(dataset.id_lookback_days, 0, -1)]
    if not days:
        return EarlierDays()
    found: list[pd.Series] = []
    digests: dict[str, str] = {}
    for earlier in days:
        uri = lake.curated(earlier)
        if not storage.exists(uri):
            continue
        ids = storage.read_frame(uri, columns=[dataset.id_column])[dataset.id_column].dropna()
        found.append(pd.Series(str(earlier), index=ids.to_numpy(), dtype=object))
        digest = storage.parquet_key_value(uri, INPUT_DIGEST_KEY)
        if digest:
            digests.setdefault(digest, str(earlier))
    known = pd.concat(found) if found else pd.Series(dtype=object)
    known = known[~known.index.duplicated(keep="first")]  # oldest first: the first sighting
    return EarlierDays(days=days, ids=known, digests=digests)


def refuse_repeated_batch(
    uri: str, digest: str, earlier: EarlierDays, lake: storage.Lake, day: date
) -> None:
    """Fail when the input is byte for byte the batch of an earlier day (curated from it, or
    its raw file): the producer delivered that day again instead of this one."""
    if not earlier.days:
        return
    seen = earlier.digests.get(digest)
    what = "the input curated for that day"
    if seen is None:
        size = storage.size_of(uri)
        wanted = set(earlier.days)
        for raw in storage.list_uris(lake.raw_folder()):
            raw_of = day_states.raw_day(raw, lake)
            if raw_of not in wanted or raw == uri:
                continue
            if storage.size_of(raw) == size and storage.sha256_of(raw) == digest:
                seen, what = str(raw_of), f"its raw file {raw}"
                break
    if seen is None:
        return
    raise DataContractError(
        f"{uri} is the same file as {seen}: its content (sha256 {digest[:12]}...) equals {what}, "
        f"so the batch for {day} was not delivered; {seen}'s was delivered again. Deliver the "
        f"batch for {day} (a corrected delivery is a new file); nothing was stored for {day} "
        "and the raw file was not changed",
        source=uri,
    )


@dataclass(frozen=True)
class ReceivedBatch:
    """A day's raw batch as read, with what is known of it before validation."""

    uri: str
    digest: str  # the input's sha256: what lineage and the repeat check know it by
    earlier: EarlierDays
    raw: pd.DataFrame


@task(name="receive-batch", task_run_name="receive-{day}", cache_policy=NONE, **IO_RETRIES)
def receive_batch(
    lake: storage.Lake, day: date, dataset: DatasetSettings, source: str | None
) -> ReceivedBatch:
    """Find and read the day's raw batch, refusing one that is an earlier day's file again."""
    uri = source or lake.raw_any(day)
    digest = storage.sha256_of(uri)
    earlier = recall_earlier_days(lake, day, dataset)
    refuse_repeated_batch(uri, digest, earlier, lake, day)
    return ReceivedBatch(uri=uri, digest=digest, earlier=earlier, raw=storage.read_frame(uri))


@task(name="validate-batch", task_run_name="validate-{source}", cache_policy=NONE)
def validate_batch(
    raw: pd.DataFrame,
    dataset: DatasetSettings,
    source: str,
    with_target: bool,
    day: date | None = None,
    known_ids: pd.Series | None = None,
    digest: str | None = None,
) -> ValidatedBatch:
    """The contract's verdict on a raw batch; `digest` (the input's sha256) derives the row
    ids of a dataset without an id column."""
    wanted = dataset.data_docs != "never"
    docs_dir = tempfile.mkdtemp(prefix="driftloop-data-docs-") if wanted else None
    try:
        batch = validate_frame(
            raw,
            dataset,
            with_target=with_target,
            source=source,
            docs_dir=docs_dir,
            day=day,
            known_ids=known_ids,
            digest=digest,
        )
    except BaseException:
        if docs_dir:
            shutil.rmtree(docs_dir, ignore_errors=True)
        raise
    if docs_dir and batch.docs_dir is None:  # no site: a clean batch under "failures"
        shutil.rmtree(docs_dir, ignore_errors=True)
    return batch


@task(
    name="store-validated",
    task_run_name="store-validated-{day}",
    cache_policy=NONE,
    **IO_RETRIES,
)
def store_validated(
    batch: ValidatedBatch,
    lake: storage.Lake,
    day: date,
    curated: bool,
    input_digest: str | None = None,
) -> IngestSummary:
    """Quarantine is always written (nothing is lost); curated only when the batch passed.

    With `input_digest`, the quarantine file is named after the input (`input-<sha256>`), so
    ingesting the same file for the same day again replaces it instead of adding one per run,
    and the curated file records the digest in its footer (a later day that is the same file
    is refused by it). The validation's Data Docs site, if one was built, is published under
    the lake's reports/data-docs/ and its local build folder removed.
    """
    run_id = current_run_id()
    quarantine_uri = None
    name = f"input-{input_digest[:16]}" if input_digest else run_id
    if len(batch.quarantine):
        quarantine = batch.quarantine.assign(_dq_run_id=run_id)
        quarantine_uri = storage.write_frame(quarantine, lake.quarantine(day, name))
    elif input_digest:
        storage.delete(lake.quarantine(day, name))  # a re-run with a changed contract
    curated_uri = lake.curated(day)
    if curated and batch.result.success:
        footer = {INPUT_DIGEST_KEY: input_digest} if input_digest else None
        storage.write_frame(batch.valid, curated_uri, metadata=footer)
    data_docs_uri = None
    if batch.docs_dir:
        site = lake.data_docs(day, run_id)
        storage.upload_folder(batch.docs_dir, site)
        data_docs_uri = storage.join(site, "index.html")
        # removed only once uploaded: a retry of this task (transient S3 error) needs it
        shutil.rmtree(batch.docs_dir, ignore_errors=True)
    result = batch.result
    return IngestSummary(
        day=day,
        source=result.source,
        curated_uri=curated_uri,
        quarantine_uri=quarantine_uri,
        rows_in=result.rows_in,
        rows_valid=result.rows_valid,
        rows_quarantined=result.rows_quarantined,
        data_docs_uri=data_docs_uri,
    )
