"""Prefect tasks of the `ingest` flow: validate a raw batch, store its curated rows and quarantine.

Tasks that take DataFrames or models use `cache_policy=NONE`: hashing a large frame for a cache
key is costly and caching is not wanted for these steps. Clients (MLflow, boto3) are built
inside the task bodies, never passed in.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import date

import pandas as pd
from prefect import task
from prefect.cache_policies import NONE

from driftloop.configs.settings import DatasetSettings
from driftloop.tasks.adapters import storage
from driftloop.tasks.adapters.validation import validate_frame
from driftloop.tasks.common import IO_RETRIES, current_run_id
from driftloop.tasks.core.contract import ValidatedBatch
from driftloop.tasks.core.results import IngestSummary


@task(name="validate-batch", task_run_name="validate-{source}", cache_policy=NONE)
def validate_batch(
    raw: pd.DataFrame, dataset: DatasetSettings, source: str, with_target: bool
) -> ValidatedBatch:
    docs_dir = tempfile.mkdtemp(prefix="driftloop-data-docs-") if dataset.data_docs else None
    try:
        return validate_frame(
            raw, dataset, with_target=with_target, source=source, docs_dir=docs_dir
        )
    except BaseException:
        if docs_dir:
            shutil.rmtree(docs_dir, ignore_errors=True)
        raise


@task(
    name="store-validated",
    task_run_name="store-validated-{day}",
    cache_policy=NONE,
    **IO_RETRIES,
)
def store_validated(
    batch: ValidatedBatch, lake: storage.Lake, day: date, curated: bool
) -> IngestSummary:
    """Quarantine is always written (nothing is lost); curated only when the batch passed.

    The validation's Data Docs site, if one was built, is published under the lake's
    reports/data-docs/ and its local build folder removed.
    """
    run_id = current_run_id()
    quarantine_uri = None
    if len(batch.quarantine):
        quarantine = batch.quarantine.assign(_dq_run_id=run_id)
        quarantine_uri = storage.write_frame(quarantine, lake.quarantine(day, run_id))
    curated_uri = lake.curated(day)
    if curated and batch.result.success:
        storage.write_frame(batch.valid, curated_uri)
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
