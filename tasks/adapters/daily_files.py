"""Daily files in a folder (local or S3) as backtest windows."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from driftloop.tasks.adapters import storage
from driftloop.tasks.core.backtest import BacktestError, Window


def folder_windows(folder: str) -> list[Window]:
    """Daily files (parquet/csv, with the target) in name order; the day comes from the name
    (YYYY-MM-DD...) or, failing that, counts up from 2000-01-01."""
    uris = [u for u in storage.list_uris(folder) if u.endswith((".parquet", ".csv"))]
    if not uris:
        raise BacktestError(f"{folder} holds no .parquet or .csv daily files to replay")
    windows = []
    for i, uri in enumerate(uris):
        name = Path(uri).name
        try:
            day = date.fromisoformat(name[:10])
        except ValueError:
            day = date(2000, 1, 1) + timedelta(days=i)
        windows.append(Window(day=day, frame=storage.read_frame(uri), source=name))
    return windows
