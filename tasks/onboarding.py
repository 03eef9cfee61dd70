"""`driftloop init`: read a sample file, write its draft contract, prove that it loads.

Not a Prefect task: init runs before any flow exists for the dataset, offline, in seconds
(no server to start). The guesses are the core's (tasks/core/onboarding.py); this module reads
the sample through the lake adapter (so CSV and parquet read as ingest reads them), refuses to
overwrite a contract unless asked, and loads the written file with the config loader, so a
draft that would not validate is never left behind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from driftloop.configs.settings import (
    CONFIG_DIR,
    DATASETS_DIR,
    ConfigError,
    Settings,
    load_settings,
)
from driftloop.tasks.adapters import storage
from driftloop.tasks.core.onboarding import Draft, OnboardingError, dataset_name, draft_contract

__all__ = ["InitResult", "OnboardingError", "init_dataset", "read_sample"]


@dataclass(frozen=True)
class InitResult:
    path: Path
    draft: Draft
    settings: Settings


def read_sample(sample: str | Path) -> pd.DataFrame:
    """The sample's rows; an unreadable or empty file raises OnboardingError naming it."""
    path = Path(sample)
    if not path.is_file():
        raise OnboardingError(
            f"sample file {path} does not exist (or is not a file): give the path of a CSV or "
            "parquet file holding some rows of the data"
        )
    try:
        frame = storage.read_frame(str(path))
    except storage.StorageError as err:
        raise OnboardingError(f"cannot read the sample: {err}") from err
    if frame.empty:
        raise OnboardingError(
            f"sample file {path} has no rows (only a header, or none): init needs rows to "
            "suggest types, ranges and the task"
        )
    return frame


def default_name(sample: Path) -> str:
    """The file's stem, or its folder's name when the stem is a day (raw/<name>/<day>.csv)."""
    stem = sample.name.split(".")[0]
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", stem) and sample.resolve().parent.name:
        stem = sample.resolve().parent.name
    return dataset_name(stem)


def init_dataset(
    sample: str | Path,
    name: str | None = None,
    target: str | None = None,
    force: bool = False,
    profile: str = "local",
    config_dir: Path | None = None,
) -> InitResult:
    """Write configs/datasets/<name>.yaml from `sample` and load it; raise OnboardingError."""
    import os

    config_dir = config_dir or Path(os.environ.get("DRIFTLOOP_CONFIG_DIR", CONFIG_DIR))
    name = name or default_name(Path(sample))
    path = config_dir / DATASETS_DIR / f"{name}.yaml"
    if path.exists() and not force:
        raise OnboardingError(
            f"{path} already exists: pass --force to replace it, or --name to write another dataset"
        )
    frame = read_sample(sample)
    draft = draft_contract(frame, name, target, source=Path(sample).name)
    try:  # a profile that does not load is the profile's fault, not the draft's
        load_settings(profile, config_dir=config_dir)
    except ConfigError as err:
        raise OnboardingError(
            f"nothing written: the configs do not load as they are: {err}"
        ) from err
    before = path.read_bytes() if path.exists() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(draft.text, encoding="utf-8")
    try:
        settings = load_settings(profile, {"dataset_config": name}, config_dir)
    except ConfigError as err:
        if before is None:
            path.unlink()
        else:
            path.write_bytes(before)
        raise OnboardingError(
            f"the draft for {sample} does not load, so it was not kept (a bug in init: please "
            f"report it with the sample's header): {err}"
        ) from err
    return InitResult(path, draft, settings)


def _roles(d: Draft) -> str:
    """The id and timestamp it found, or what stands in for them (docs/data-scientist.md)."""
    id_part = (
        f"id {d.id_column!r}"
        if d.id_column
        else "no id column (each row gets one from the batch's digest and its position)"
    )
    time_part = (
        f"timestamp {d.timestamp_column!r}"
        if d.timestamp_column
        else "no timestamp (a row's event time is its batch's day)"
    )
    return f"{id_part}, {time_part}"


def next_steps(result: InitResult) -> str:
    """What init prints: what it guessed and the two commands to a first champion."""
    d, s = result.draft, result.settings
    lake = storage.Lake(s.storage.root, d.name)
    label = f", positive label {d.positive_label!r}" if d.task == "binary" else ""
    return (
        f"wrote {result.path}: {len(d.columns)} columns from {d.rows} rows; task {d.task} on "
        f"target {d.target!r}{label}; {_roles(d)}\n"
        f"next:\n"
        f"  1. review the lines marked REVIEW in {result.path}\n"
        f"  2. put one file per day in {lake.raw_folder()}/ named YYYY-MM-DD.csv (or .parquet)\n"
        f"  3. DRIFTLOOP_DATASET={d.name} driftloop process   "
        f"# ingests every day, trains v1 after {s.process.bootstrap_days} days, scores the rest"
    )
