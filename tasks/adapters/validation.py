"""Great Expectations: the contract's checks run as an expectation suite, and Data Docs.

`validate_frame` splits a raw batch into typed valid rows and quarantined raw rows with the
verdict. The checks come from the core (`core.contract`), which also screens them: GE runs
only the expectations the screen found failing (with the row number of every failing row,
which quarantine needs) and has the last word; on a clean batch it is not imported. With a
Data Docs folder, GE validates the whole suite once and renders the site there (GE 1.x builds
sites on a local disk only; the caller publishes the folder to the lake).

Nothing outside this module sees GE types: results are our pydantic models. GE is imported
lazily (it is slow to import), only when it has something to do, with analytics off.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd

from driftloop.configs.settings import DatasetSettings
from driftloop.tasks.core.contract import (
    ROW_COLUMN,
    Check,
    CheckOutcome,
    NotNull,
    ValidatedBatch,
    ValidationResult,
    aggregate_value,
    as_utc,
    batch_verdict,
    build_checks,
    coerce_batch,
    collect_findings,
    derive_columns,
    derived_columns,
    flag_known_ids,
    narrow,
    quarantine_frame,
    screen_checks,
)

_GX_SEVERITY = {"error": "critical", "warning": "warning"}


# The result formats GE is asked for. A Data Docs site is built from a first pass over the
# whole suite with counts (what the site shows); rows are listed only for checks that failed.
_SCREEN_FOR_DOCS = {"result_format": "BASIC", "partial_unexpected_count": 0}


_DETAIL = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": [ROW_COLUMN],
    "exclude_unexpected_values": True,
    "return_unexpected_index_query": False,
    "partial_unexpected_count": 0,
}


def _ge_view(frame: pd.DataFrame, checks: list[Check], categorical: list[str]) -> pd.DataFrame:
    """The frame GE validates: row numbers as a named index, rule columns, categoricals.

    For a named index GE lists unexpected rows straight from the index (for a column it does
    one .at[] lookup per failing row). Category columns are handed over as pandas Categoricals:
    GE copies and null-checks whole frames per expectation, and for small integer codes that
    is much cheaper than for Python strings (values and verdicts are the same).
    """
    view = frame.copy()  # consolidated: GE copies the frame for many metrics, and an
    # unconsolidated one is re-consolidated on every copy, which adds up over a suite
    view.index = pd.RangeIndex(len(frame), name=ROW_COLUMN)
    for name in categorical:
        if name in view.columns and view[name].dtype == object:
            view[name] = view[name].astype("category")
    for name, values in derived_columns(frame, checks).items():
        view[name] = values.to_numpy()
    return view


def run_gx(
    frame: pd.DataFrame,
    checks: list[Check],
    *,
    dataset: str = "batch",
    source: str = "",
    docs_dir: str | None = None,
    categorical: list[str] | None = None,
    screen: bool = True,
    notna: NotNull | None = None,
    docs_on_failure: bool = False,
) -> list[CheckOutcome]:
    """Evaluate the suite; GE lists the row numbers of failing rows and has the last word.

    Most batches pass, so the suite is first screened (`screen_checks`) and GE runs only the
    checks that failed, with COMPLETE results (the row number of every failing row): on a
    clean batch GE is not started at all. With `docs_dir`, the first pass is GE's (BASIC
    counts for every check) and a Data Docs site of it is written there before the detail
    pass (GE 1.x builds sites on a local filesystem only; the caller publishes the folder).
    `screen=False`: one COMPLETE pass of GE over everything (what the others must agree with).
    With `docs_on_failure`, a clean batch gets no site (and no GE): only a failing one does.

    A fresh ephemeral context per call: it is cheap to build, whereas a cached one would keep
    every serialised result in its in-memory store for the life of the process.
    """
    everything = list(range(len(checks)))
    gx_first = (docs_dir is not None and not docs_on_failure) or not screen
    notna = notna or NotNull(frame)
    screened = [] if gx_first else screen_checks(frame, checks, notna)
    failed = [i for i, ok in enumerate(screened) if not ok]
    gx_first = gx_first or (docs_dir is not None and bool(failed))
    results: dict[int, Any] = {}
    if gx_first or failed:
        run = _GxRun(frame, checks, dataset=dataset, source=source, categorical=categorical or [])
        if gx_first:
            results = run.validate(everything, _SCREEN_FOR_DOCS if screen else _DETAIL, "")
            if docs_dir is not None:
                _build_docs(run.context, docs_dir)  # the site shows this first validation only
            failed = [i for i in everything if screen and not results[i].success]
        if failed:
            results.update(run.validate(failed, _DETAIL, "_failures"))
    outcomes: list[CheckOutcome] = []
    for index in everything:
        check = checks[index]
        r = results.get(index)
        details = (r.result or {}) if r is not None else {}
        success = bool(r.success) if r is not None else True  # screened: passed
        if "observed_value" not in details and success and not check.row_level:
            observed = aggregate_value(check, len(frame), lambda c: int(notna(c).sum()))
            details = {**details, "observed_value": observed}
        positions = _positions(details) if check.row_level else np.empty(0, dtype=np.int64)
        count = int(details.get("unexpected_count") or 0)
        if check.row_level and len(positions) != count:
            raise RuntimeError(
                f"Great Expectations reported {count} unexpected rows for {check.gx_type} on "
                f"{check.column!r} but listed {len(positions)}; refusing to quarantine a guess"
            )
        outcomes.append(
            CheckOutcome(index, check, success, count, positions, details.get("observed_value"))
        )
    return outcomes


class _GxRun:
    """One ephemeral GE context over one batch: validations of parts of the suite, docs."""

    def __init__(
        self,
        frame: pd.DataFrame,
        checks: list[Check],
        *,
        dataset: str,
        source: str,
        categorical: list[str],
    ) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.checks = checks
        self.dataset = dataset
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.batch_definition = (
            self.context.data_sources.add_pandas("driftloop")
            .add_dataframe_asset(dataset)
            .add_batch_definition_whole_dataframe("whole")
        )
        self.frame = _ge_view(frame, checks, categorical)
        # The run is named after the file, so Data Docs list validations by what was checked.
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", source.rstrip("/").rsplit("/", 1)[-1]) or None
        self.run_id = RunIdentifier(run_name=name, run_time=datetime.now(UTC))

    def validate(
        self, indices: list[int], result_format: dict[str, Any], suffix: str
    ) -> dict[int, Any]:
        import great_expectations as gx
        import great_expectations.expectations as gxe

        # Data Docs file a validation under its suite's name: "<dataset>_contract"
        suite = gx.ExpectationSuite(name=f"{self.dataset}_contract{suffix}")
        for i in indices:
            check = self.checks[i]
            suite.add_expectation(
                getattr(gxe, check.gx_type)(
                    **check.kwargs,
                    severity=_GX_SEVERITY[check.severity],
                    meta={"driftloop_check": i},
                )
            )
        definition = self.context.validation_definitions.add(
            gx.ValidationDefinition(
                name=f"data_contract{suffix}",
                data=self.batch_definition,
                suite=self.context.suites.add(suite),
            )
        )
        result = definition.run(
            run_id=self.run_id,
            batch_parameters={"dataframe": self.frame},
            result_format=result_format,
        )
        found = {int(r.expectation_config.meta["driftloop_check"]): r for r in result.results}
        for i, r in found.items():
            if r.exception_info and r.exception_info.get("raised_exception"):
                raise RuntimeError(
                    f"Great Expectations could not evaluate {self.checks[i].gx_type} on column "
                    f"{self.checks[i].column!r}: {r.exception_info.get('exception_message')}"
                )
        return found


def _build_docs(context: Any, docs_dir: str) -> None:
    """Render the context's (one) stored validation result as a static site in docs_dir."""
    context.add_data_docs_site(
        site_name="driftloop",
        site_config={
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": docs_dir,
            },
        },
    )
    context.build_data_docs(site_names=["driftloop"])


def _positions(details: dict[str, Any]) -> np.ndarray:
    """Row numbers from GE's unexpected_index_list, in either of the shapes GE returns."""
    found: list[Any] = []
    for item in details.get("unexpected_index_list") or []:
        value = item[ROW_COLUMN] if isinstance(item, dict) else item
        if isinstance(value, list):
            found.extend(value)
        else:
            found.append(value)
    return np.asarray(found, dtype=np.int64)


def validate_frame(
    raw: pd.DataFrame,
    dataset: DatasetSettings,
    *,
    with_target: bool = True,
    source: str,
    now: datetime | None = None,
    docs_dir: str | None = None,
    day: date | None = None,
    known_ids: pd.Series | None = None,
    digest: str | None = None,
) -> ValidatedBatch:
    """Split a raw batch into typed valid rows and raw quarantined rows, with the verdict.

    Never mutates `raw`. Raises DataContractError only for structural problems; blocking
    row-level findings are in `result` (call `raise_for_result` once the quarantine is saved).
    With `docs_dir` (an existing local folder), a Data Docs site is built there as well
    (`dataset.data_docs`: always, or only when a check failed; the batch's docs_dir says which).
    With `day`, timestamps must fall on the batch's day (`dataset.event_time_tolerance_hours`);
    with `known_ids` (id -> the earlier day it was curated), those ids are quarantined.
    With `digest` (the input file's sha256), the columns the contract derives (a dataset
    without id or timestamp: `derive_columns`) are added first; without it `raw` has them.
    """
    now = as_utc(now or datetime.now(UTC))
    if digest is not None:
        raw = derive_columns(raw, dataset, digest=digest, day=day, source=source)
    coerced = coerce_batch(raw, dataset, with_target=with_target, source=source)
    typed, contract = coerced.frame, coerced.contract
    n = len(typed)
    checks = build_checks(contract, dataset, now, day)
    categorical = [name for name, spec in contract.items() if spec.dtype == "category"]
    columns = NotNull(typed)
    gx_outcomes = run_gx(
        typed,
        checks,
        dataset=dataset.name,
        source=source,
        docs_dir=docs_dir,
        categorical=categorical,
        notna=columns,
        docs_on_failure=dataset.data_docs == "failures",
    )
    if docs_dir is not None and not os.path.exists(os.path.join(docs_dir, "index.html")):
        docs_dir = None  # a clean batch under data_docs: failures

    found = collect_findings(contract, coerced.parse, coerced.extras, gx_outcomes, typed, rows=n)
    flag_known_ids(found, typed, dataset, known_ids)
    q_positions = np.flatnonzero(found.quarantined)
    valid_positions = np.flatnonzero(~found.quarantined)
    rows_quarantined, rows_valid = len(q_positions), len(valid_positions)
    blocking = batch_verdict(
        found.outcomes, dataset, source=source, rows_in=n, rows_valid=rows_valid
    )

    valid = typed if rows_quarantined == 0 else narrow(typed.take(valid_positions))
    quarantine = quarantine_frame(raw, list(contract), q_positions, found.reasons.text, source)
    result = ValidationResult(
        source=source,
        rows_in=n,
        rows_valid=rows_valid,
        rows_quarantined=rows_quarantined,
        success=not blocking,
        outcomes=found.outcomes,
        blocking_failures=blocking,
    )
    return ValidatedBatch(
        valid=valid,
        quarantine=quarantine,
        result=result,
        docs_dir=docs_dir,
        unique_hashes=columns.hashes,
    )
