"""Benchmark: driftloop's `validate_frame` against a bare Great Expectations call on one frame.

Why: validation runs on every batch at ingest and before scoring, and it does more than GE
alone (coercion of raw values, row-level quarantine with a reason per row, a typed valid
frame). This measures what that costs. Both sides get the same frame and the same
expectations (the suite `validate_frame` derives from the contract); they run alternately,
several times, in one process, and the medians and their ratio are printed (goal <= 1.2x).

Also timed: what scoring runs on a batch read from parquet (`validate_table`, judged in
arrow when clean, else `validate_frame` on the same rows as pandas). Three bare references
are timed: BOOLEAN_ONLY (only "did each expectation pass?", the cheapest call GE offers), GE's
default result format (SUMMARY: counts and a sample, what a plain "is this batch OK?" call
returns) and COMPLETE with the row index of every failing row (what row-level quarantine
needs; `validate_frame` screens the suite's predicates itself and asks GE for COMPLETE only
for the expectations that failed). Optionally also the cost of a Data Docs site
(`dataset.data_docs`: then GE runs the whole suite once, for the site).

    python benchmarks/validation.py                      # 1,000,000 rows x 20 columns
    python benchmarks/validation.py --rows 2000 --reps 1 # smoke run (used by the tests)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from driftloop.configs.settings import ColumnSpec, DatasetSettings, load_settings
from driftloop.data.generate import SCENARIOS, generate_day
from driftloop.tasks.adapters import storage, validation
from driftloop.tasks.core import contract

DAY = date(2026, 11, 1)
NOW = datetime(2026, 11, 2, tzinfo=UTC)
CHANNELS = ["web", "branch", "partner", "phone"]
# Five columns added to the 15 of the loans contract, so the frame has 20.
EXTRA_COLUMNS: dict[str, ColumnSpec] = {
    "monthly_payment": ColumnSpec(dtype="float", nullable=False, min=0, max=200_000),
    "loan_to_income": ColumnSpec(dtype="float", max_null_fraction=0.2, min=0, max=1_000),
    "channel": ColumnSpec(dtype="category", nullable=False, categories=CHANNELS),
    "months_since_delinquency": ColumnSpec(dtype="int", min=0, max=600),
    "application_ref": ColumnSpec(dtype="string", nullable=False),
}


def wide_contract() -> DatasetSettings:
    """The loans contract from configs/base.yaml plus EXTRA_COLUMNS (20 columns)."""
    base = load_settings("local").dataset
    columns = dict(base.columns)
    target = columns.pop(base.target)
    return base.model_copy(
        update={"columns": {**columns, **EXTRA_COLUMNS, base.target: target}, "max_rows": None}
    )


def wide_frame(rows: int, scenario: str, seed: int = 0) -> pd.DataFrame:
    """The generator's loans frame widened with EXTRA_COLUMNS (derived, deterministic)."""
    frame = generate_day(DAY, rows, scenario=scenario, seed=seed)
    rng = np.random.default_rng(seed)
    rate = frame["interest_rate"].to_numpy() / 1200
    term = frame["term_months"].to_numpy()
    amount = frame["loan_amount"].to_numpy()
    with np.errstate(all="ignore"):
        payment = amount * rate / (1 - (1 + rate) ** -term)
        payment = np.where(rate > 0, payment, amount / term)
        ratio = amount / frame["income"].to_numpy()
    delinquency = rng.integers(0, 240, rows).astype("float64")
    delinquency[rng.random(rows) < 0.6] = np.nan  # most applicants never were delinquent
    extra = pd.DataFrame(
        {
            "monthly_payment": np.abs(payment),
            "loan_to_income": np.where(np.isfinite(ratio), ratio, np.nan),
            "channel": np.asarray(CHANNELS, dtype=object)[rng.integers(0, len(CHANNELS), rows)],
            "months_since_delinquency": pd.array(delinquency, dtype="Int64"),
            "application_ref": frame["loan_id"].str.replace("L", "A", n=1),
        }
    )
    target = frame.pop("default")
    return pd.concat([frame, extra, target.rename("default")], axis=1)


def as_ingested(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame after a parquet round trip through our storage: exactly what ingest validates.

    (A frame built column by column is unconsolidated; GE copies it for many metrics and pays
    for re-consolidating it every time, which would make the bare call look slow.)
    """
    with tempfile.TemporaryDirectory() as folder:
        uri = storage.write_frame(frame, os.path.join(folder, f"{DAY}.parquet"))
        return storage.read_frame(uri)


def bare_gx(frame: pd.DataFrame, dataset: DatasetSettings, result_format: Any) -> Callable[[], Any]:
    """A plain GE 1.x validation of `frame` with the same expectations validate_frame runs."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    checks = contract.build_checks(dataset.contract_columns(), dataset, NOW)
    ge_frame = frame.copy(deep=False)
    ge_frame.index = pd.RangeIndex(len(frame), name="row")

    def run() -> Any:
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        batch = (
            context.data_sources.add_pandas("bare")
            .add_dataframe_asset("batch")
            .add_batch_definition_whole_dataframe("whole")
        )
        suite = gx.ExpectationSuite(
            name="bare",
            expectations=[getattr(gxe, c.gx_type)(**c.kwargs) for c in checks],
        )
        suite = context.suites.add(suite)
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name="bare", data=batch, suite=suite)
        )
        return definition.run(batch_parameters={"dataframe": ge_frame}, result_format=result_format)

    return run


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=5, help="alternating repetitions per variant")
    parser.add_argument(
        "--scenario",
        choices=SCENARIOS,
        default="none",
        help="'corrupt' breaks ~8%% of the rows (quarantine path)",
    )
    parser.add_argument("--no-docs", action="store_true", help="skip timing Data Docs")
    args = parser.parse_args(argv)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

    dataset = wide_contract()
    started = time.perf_counter()
    frame = as_ingested(wide_frame(args.rows, args.scenario))
    print(
        f"frame: {len(frame):,} rows x {frame.shape[1]} columns, scenario {args.scenario!r} "
        f"(built in {time.perf_counter() - started:.1f} s); "
        f"{len(contract.build_checks(dataset.columns, dataset, NOW))} expectations"
    )
    source = f"bench/{DAY}.parquet"
    batch = validation.validate_frame(frame, dataset, source=source, now=NOW)  # warm-up, imports
    print(
        f"validate_frame: {batch.result.rows_valid:,} valid, "
        f"{batch.result.rows_quarantined:,} quarantined, blocked={not batch.result.success}"
    )

    docs_dirs: list[str] = []

    def with_docs() -> Any:
        docs_dirs.append(tempfile.mkdtemp(prefix="bench-docs-"))
        return validation.validate_frame(
            frame, dataset, source=source, now=NOW, docs_dir=docs_dirs[-1]
        )

    table = pa.Table.from_pandas(frame, preserve_index=False)  # as scoring reads a batch

    def in_arrow() -> Any:
        """What scoring runs: arrow when the batch is clean, else validate_frame on pandas."""
        clean = contract.validate_table(table, dataset, source=source, now=NOW)
        if clean is not None:
            return clean
        return validation.validate_frame(
            storage.table_to_frame(table), dataset, source=source, now=NOW
        )

    variants: dict[str, Callable[[], Any]] = {
        "validate_frame": lambda: validation.validate_frame(frame, dataset, source=source, now=NOW),
        "validate_table (else _frame)": in_arrow,
        "bare GE, BOOLEAN_ONLY": bare_gx(frame, dataset, "BOOLEAN_ONLY"),
        "bare GE, SUMMARY": bare_gx(frame, dataset, "SUMMARY"),
        "bare GE, COMPLETE + row index": bare_gx(
            frame,
            dataset,
            {
                "result_format": "COMPLETE",
                "unexpected_index_column_names": ["row"],
                "exclude_unexpected_values": True,
                "return_unexpected_index_query": False,
            },
        ),
    }
    if not args.no_docs:
        variants["validate_frame + Data Docs"] = with_docs
    times: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for _ in range(args.reps):
            for name, fn in variants.items():
                times[name].append(timed(fn))
    finally:
        for folder in docs_dirs:
            shutil.rmtree(folder, ignore_errors=True)

    medians = {name: statistics.median(values) for name, values in times.items()}
    ours = medians["validate_frame"]
    print(f"\nmedians of {args.reps} alternating runs (seconds):")
    for name, value in medians.items():
        spread = ", ".join(f"{t:.2f}" for t in times[name])
        print(f"  {name:<32} {value:7.2f}   [{spread}]")
    print("\nratios:")
    for name in ("bare GE, BOOLEAN_ONLY", "bare GE, SUMMARY", "bare GE, COMPLETE + row index"):
        print(f"  validate_frame / {name:<29} {ours / medians[name]:.2f}x  (goal <= 1.20x)")
    arrow = medians["validate_table (else _frame)"] / medians["bare GE, BOOLEAN_ONLY"]
    print(f"  validate_table (else _frame) / bare GE, BOOLEAN_ONLY  {arrow:.2f}x")
    if "validate_frame + Data Docs" in medians:
        docs = medians["validate_frame + Data Docs"] - ours
        print(f"  Data Docs add {docs:+.2f} s per validation ({docs / ours:+.0%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
