"""Prefect tasks of the `labels` flow: delayed labels (id + target) checked by the contract,
stored where the drift check reads them, bad rows quarantined with their reasons.

Tasks that take DataFrames use `cache_policy=NONE` (see tasks/ingest.py)."""

from __future__ import annotations

from datetime import date

import pandas as pd
from prefect import task
from prefect.cache_policies import NONE

from driftloop.configs.settings import DatasetSettings
from driftloop.tasks.adapters import storage
from driftloop.tasks.adapters.validation import validate_frame
from driftloop.tasks.common import IO_RETRIES, current_run_id
from driftloop.tasks.core.contract import (
    ValidatedBatch,
    check_labels_structure,
    labels_contract,
)
from driftloop.tasks.core.results import LabelsSummary


@task(name="validate-labels", task_run_name="validate-labels-{source}", cache_policy=NONE)
def validate_labels(raw: pd.DataFrame, dataset: DatasetSettings, source: str) -> ValidatedBatch:
    """The labels' id and target checked as the contract declares them: an unparsable or
    missing id, a repeated id, a target outside its dtype, range or categories quarantines
    the row; too many such rows fail the file (dataset.max_quarantine_fraction)."""
    check_labels_structure([str(c) for c in raw.columns], dataset, source)
    return validate_frame(raw, labels_contract(dataset), with_target=True, source=source)


@task(name="store-labels", task_run_name="store-labels-{day}", cache_policy=NONE, **IO_RETRIES)
def store_labels(
    batch: ValidatedBatch, lake: storage.Lake, day: date, input_digest: str
) -> LabelsSummary:
    """Quarantine first (named after the input, so a re-run replaces it); then the valid
    labels at labels/<dataset>/<day>.parquet, replacing that day's labels, only when the file
    passed its contract."""
    name = f"labels-input-{input_digest[:16]}"
    quarantine_uri = None
    if len(batch.quarantine):
        quarantine = batch.quarantine.assign(_dq_run_id=current_run_id())
        quarantine_uri = storage.write_frame(quarantine, lake.quarantine(day, name))
    else:
        storage.delete(lake.quarantine(day, name))
    labels_uri = None
    if batch.result.success:
        labels_uri = storage.write_frame(batch.valid, lake.labels(day))
    result = batch.result
    return LabelsSummary(
        day=day,
        source=result.source,
        labels_uri=labels_uri,
        quarantine_uri=quarantine_uri,
        rows_in=result.rows_in,
        rows_valid=result.rows_valid,
        rows_quarantined=result.rows_quarantined,
    )
