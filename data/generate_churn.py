"""Seeded demo data for the second example dataset: customer churn (configs/datasets/churn.yaml).

Why a second, smaller generator: the churn dataset exists to show that a new dataset is onboarded
by config alone, so its data only has to be plausible, learnable and reproducible; it has none
of the drift scenarios of the loans generator. Every day draws from its own stream derived from
``(seed, day ordinal)``, so any day can be regenerated alone and the same arguments always give
the same frame.

CLI (one raw file per day into the lake layout of :class:`driftloop.tasks.adapters.storage.Lake`)::

    python -m driftloop.data.generate_churn --root data/lake --start 2026-11-01 --days 3
"""

from __future__ import annotations

import argparse
import datetime
import sys

import numpy as np
import pandas as pd

from driftloop.tasks.adapters import storage

DATASET = "churn"
CONTRACTS: tuple[str, ...] = ("month-to-month", "one-year", "two-year")
PAYMENTS: tuple[str, ...] = ("card", "bank_transfer", "electronic_check", "mailed_check")
INTERNET: tuple[str, ...] = ("none", "dsl", "fiber")


def generate_day(day: datetime.date, n_rows: int, *, seed: int = 0) -> pd.DataFrame:
    """One day's snapshot of customer accounts with whether each one churned."""
    if n_rows < 1:
        raise ValueError(f"n_rows must be >= 1, got {n_rows}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, day.toordinal(), 2]))
    contract = rng.choice(len(CONTRACTS), n_rows, p=[0.55, 0.25, 0.20])
    payment = rng.choice(len(PAYMENTS), n_rows, p=[0.3, 0.25, 0.3, 0.15])
    internet = rng.choice(len(INTERNET), n_rows, p=[0.2, 0.35, 0.45])
    tenure = np.clip(rng.gamma(1.5, 16 + 14 * contract), 0, 240).astype(np.int64)
    monthly = np.round(20 + 25 * internet + rng.normal(0, 12, n_rows).clip(-15, 60), 2)
    total = np.round(monthly * np.maximum(tenure, 1) * rng.uniform(0.9, 1.05, n_rows), 2)
    calls = rng.poisson(1.0 + 1.5 * (internet == 2), n_rows).astype(np.int64)
    senior = rng.random(n_rows) < 0.16
    satisfaction = np.round(np.clip(rng.normal(3.6 - 0.3 * calls, 0.8), 1, 5), 1)
    logit = (
        -1.2
        + 1.4 * (contract == 0)
        - 0.9 * (contract == 2)
        - 0.035 * tenure
        + 0.015 * (monthly - 60)
        + 0.35 * calls
        + 0.6 * (payment == 2)
        + 0.4 * senior
        - 0.3 * (satisfaction - 3)
    )
    churned = (rng.random(n_rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    start = pd.Timestamp(day, tz="UTC")
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{day:%Y%m%d}-{i:06d}" for i in range(n_rows)],
            "snapshot_time": start + pd.to_timedelta(np.sort(rng.integers(0, 86_400, n_rows)), "s"),
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "total_charges": np.where(rng.random(n_rows) < 0.01, np.nan, total),
            "contract": np.asarray(CONTRACTS, dtype=object)[contract],
            "payment_method": np.asarray(PAYMENTS, dtype=object)[payment],
            "internet_service": np.asarray(INTERNET, dtype=object)[internet],
            "support_calls": calls,
            "senior_citizen": senior,
            "satisfaction": np.where(rng.random(n_rows) < 0.1, np.nan, satisfaction),
            "churned": churned,
        }
    )
    return frame


def write_batches(
    root: str, start: datetime.date, days: int, rows_per_day: int, *, seed: int = 0
) -> list[str]:
    """Write one raw parquet file per day under raw/churn/ and return their URIs."""
    lake = storage.Lake(root, DATASET)
    out = []
    for i in range(days):
        day = start + datetime.timedelta(days=i)
        out.append(storage.write_frame(generate_day(day, rows_per_day, seed=seed), lake.raw(day)))
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; prints the written URIs, one per line."""
    parser = argparse.ArgumentParser(
        prog="python -m driftloop.data.generate_churn",
        description="Write seeded demo churn data, one raw file per day, into a driftloop lake.",
    )
    parser.add_argument("--root", default="data/lake", help="lake root: folder or s3:// prefix")
    parser.add_argument("--start", type=datetime.date.fromisoformat, required=True)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.days < 1 or args.rows < 1:
        parser.error("--days and --rows must be >= 1")
    uris = write_batches(args.root, args.start, args.days, args.rows, seed=args.seed)
    sys.stdout.write("".join(f"{uri}\n" for uri in uris))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
