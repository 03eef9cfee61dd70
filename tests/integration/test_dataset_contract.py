"""A dataset as it comes: no id column, no timestamp, gzipped CSV exports named by a date
pattern, a leaky column kept out of the model, through the real flows.

The breast cancer batches of `data/sklearn_datasets.py` lose their `row_id` and `observed_at`
columns and are written as `exports/cancer_<YYYYMMDD>.csv.gz`, with two identical rows; the
contract leaves `id_column` and `timestamp_column` out, sets `raw_pattern` and excludes
`mean_area` from the model. Ingest, train, score, the labels join and the drift check must
all work on the ids and event times driftloop derives.
"""

from __future__ import annotations

import gzip
import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from driftloop.configs.settings import CONFIG_DIR
from driftloop.data.sklearn_datasets import generate_day
from driftloop.flows.check_drift import check_drift
from driftloop.flows.ingest import ingest
from driftloop.flows.labels import labels
from driftloop.flows.score import score
from driftloop.flows.train import train
from driftloop.tasks.adapters import storage

pytestmark = pytest.mark.usefixtures("prefect_backend")

START = date(2026, 11, 1)
ROWS = 1500
NAME = "anon_cancer"
PATTERN = "exports/cancer_{date:%Y%m%d}.csv.gz"


def anonymous_config(folder: Path) -> Path:
    """configs/ copied, plus datasets/anon_cancer.yaml: breast_cancer without id/timestamp."""
    shutil.copytree(CONFIG_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    spec = yaml.safe_load((CONFIG_DIR / "datasets" / "breast_cancer.yaml").read_text())
    dataset = spec["dataset"]
    for role in ("id_column", "timestamp_column"):
        del dataset["columns"][dataset.pop(role)]
    dataset["name"] = NAME
    dataset["raw_pattern"] = PATTERN
    dataset["features"] = {"exclude": ["mean_area"]}
    spec["registry"] = {"model_name": "anon-cancer", "experiment": "driftloop-anon"}
    (folder / "datasets" / f"{NAME}.yaml").write_text(yaml.safe_dump(spec))
    return folder


def raw_day(day: date, drifted: bool = False) -> pd.DataFrame:
    frame = generate_day("breast_cancer", day, ROWS, drifted=drifted)
    frame = frame.drop(columns=["row_id", "observed_at"])
    frame.iloc[1] = frame.iloc[0]  # two identical rows: they must get two ids
    return frame


def labels_csv(ids: pd.Series, frame: pd.DataFrame) -> str:
    """The day's labels (id, target, an extra column) plus a row without id, a repeated id
    and a target outside the contract's categories."""
    good = pd.DataFrame({"row_id": ids, "diagnosis": frame["diagnosis"], "note": "ok"})
    bad = pd.DataFrame(
        {
            "row_id": [None, ids.iloc[0], "abc-1"],
            "diagnosis": ["benign", "benign", "unknown"],
            "note": ["no id", "again", "bad class"],
        }
    )
    return pd.concat([good, bad], ignore_index=True).to_csv(index=False)


def test_dataset_without_id_or_timestamp_runs_the_loop(
    workspace: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLOOP_CONFIG_DIR", str(anonymous_config(tmp_path / "configs")))
    overrides = {**workspace.overrides, "dataset_config": NAME}
    settings = workspace.settings(dataset_config=NAME)
    assert settings.dataset.id_column == "row_id"
    assert settings.dataset.derived_columns == {"row_id": "row_id", "event_time": "batch_day"}
    assert "row_id" not in settings.dataset.feature_columns
    assert settings.dataset.excluded_columns == ["mean_area"]
    lake = storage.Lake(workspace.lake_root, NAME, PATTERN)
    days = [START + timedelta(days=i) for i in range(4)]
    raw = {day: Path(lake.raw_by_pattern(day)) for day in days}
    raw[days[0]].parent.mkdir(parents=True)
    for i, day in enumerate(days):
        text = raw_day(day, drifted=i >= 2).to_csv(index=False).encode()
        raw[day].write_bytes(gzip.compress(text, mtime=0))
    assert raw[days[0]].name == "cancer_20261101.csv.gz"
    raw_before = raw[days[0]].read_bytes()

    for day in days[:2]:
        assert ingest(day, overrides=overrides).rows_valid == ROWS
    curated = storage.read_frame(lake.curated(days[0]))
    digest = storage.sha256_of(str(raw[days[0]]))
    assert curated["row_id"].is_unique
    assert curated["row_id"].iloc[0] == f"{digest[:16]}-0"
    assert curated["row_id"].iloc[1] == f"{digest[:16]}-1"  # the identical row: its own id
    assert (curated["event_time"] == pd.Timestamp(days[0], tz="UTC")).all()
    # the same file again: the same ids; the raw file is untouched
    assert ingest(days[0], overrides=overrides).rows_valid == ROWS
    again = storage.read_frame(lake.curated(days[0]))
    assert again["row_id"].tolist() == curated["row_id"].tolist()
    assert raw[days[0]].read_bytes() == raw_before

    trained = train(days[0], days[1], overrides=overrides)
    assert trained.promoted and trained.version == "1", trained.gate_reason
    card = next(workspace.root.glob(f"mlartifacts/**/{trained.run_id}/artifacts/model_card.md"))
    assert "kept out of the model (validated, monitored): mean_area" in card.read_text()

    for day in days[2:]:
        scored = score(day, overrides=overrides)
        predictions = storage.read_frame(scored.output_uri)
        assert len(predictions) == ROWS
        day_digest = storage.sha256_of(str(raw[day]))
        assert predictions["row_id"].iloc[5] == f"{day_digest[:16]}-5"
        # delayed labels keyed by the derived ids, delivered as a CSV with three bad rows
        source = tmp_path / f"labels-{day}.csv"
        source.write_text(labels_csv(predictions["row_id"], raw_day(day, drifted=True)))
        before = source.read_bytes()
        stored = labels(day, str(source), overrides=overrides)
        assert (stored.rows_in, stored.rows_valid, stored.rows_quarantined) == (ROWS + 3, ROWS, 3)
        assert source.read_bytes() == before
        reasons = storage.read_frame(stored.quarantine_uri)["_dq_reasons"].tolist()
        assert any("row_id" in r and "null" in r for r in reasons), reasons
        assert any("row_id" in r and "repeat" in r.lower() for r in reasons), reasons
        assert any("diagnosis" in r and "'unknown'" in r for r in reasons), reasons
        kept = storage.read_frame(lake.labels(day))
        assert list(kept.columns) == ["row_id", "diagnosis"] and len(kept) == ROWS

    checked = check_drift(days[-1], window_days=2, retrain=False, overrides=overrides)
    assert checked.signals["feature_drift"], checked.reason
    record = storage.read_frame(checked.decision_uri)
    decay = record[(record["kind"] == "signal") & (record["name"] == "performance_decay")]
    assert "realised roc_auc" in decay["detail"].iloc[0]
    # the excluded column is monitored: its drift score is in the record, counted by nothing
    assert "mean_area" in set(record["name"])
    feature = record[(record["kind"] == "signal") & (record["name"] == "feature_drift")]
    assert "mean_area" not in feature["detail"].iloc[0].split(";")[0]


def test_a_labels_file_that_fails_its_contract_stores_no_labels(
    workspace: Any, tmp_path: Path
) -> None:
    """On the shipped loans contract: a file without the target names the columns; a file
    mostly bad keeps its quarantine, stores no labels and fails the run."""
    from driftloop.tasks.core.contract import DataContractError

    day = START
    lake = storage.Lake(workspace.lake_root, "loans")
    no_target = tmp_path / "no_target.csv"
    no_target.write_text("loan_id,outcome\nL1,1\n")
    with pytest.raises(DataContractError, match=r"needs the columns \['loan_id', 'default'\]"):
        labels(day, str(no_target), overrides=workspace.overrides)
    mostly_bad = tmp_path / "mostly_bad.csv"
    mostly_bad.write_text("loan_id,default\nL1,1\nL2,7\nL3,yes\n,0\n")
    with pytest.raises(DataContractError, match="max_quarantine_fraction"):
        labels(day, str(mostly_bad), overrides=workspace.overrides)
    assert not storage.exists(lake.labels(day))
    quarantined = storage.list_uris(lake.quarantine_day(day))
    assert len(quarantined) == 1 and "labels-input-" in quarantined[0]
    assert len(storage.read_frame(quarantined[0])) == 3


def test_a_missing_day_names_the_pattern_and_the_day(
    workspace: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLOOP_CONFIG_DIR", str(anonymous_config(tmp_path / "configs")))
    overrides = {**workspace.overrides, "dataset_config": NAME}
    with pytest.raises(storage.NotFoundError) as err:
        ingest(START, overrides=overrides)
    message = str(err.value)
    assert PATTERN in message and "2026-11-01" in message and "cancer_20261101.csv.gz" in message


def test_process_finds_the_days_the_pattern_names_and_runs_them(
    workspace: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unattended loop on files as the producer names them: `process` lists the days by
    `dataset.raw_pattern`, trains v1 once two are curated, and scores the rest; a file the
    pattern does not name is reported, not read."""
    from driftloop.flows.process import process

    monkeypatch.setenv("DRIFTLOOP_CONFIG_DIR", str(anonymous_config(tmp_path / "configs")))
    overrides = {**workspace.overrides, "dataset_config": NAME, "process.bootstrap_days": 2}
    lake = storage.Lake(workspace.lake_root, NAME, PATTERN)
    days = [START + timedelta(days=i) for i in range(3)]
    for day in days:
        path = Path(lake.raw_by_pattern(day))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(raw_day(day).to_csv(index=False).encode(), mtime=0))
    stray = Path(lake.raw_by_pattern(days[0])).parent / "cancer_latest.csv.gz"
    stray.write_bytes(b"")

    summary = process(check=False, overrides=overrides)

    assert [o.day for o in summary.days] == days
    assert not summary.failed_days and not summary.missing_days, summary
    assert summary.champion == "1"
    assert any(f.endswith("cancer_latest.csv.gz") for f in summary.unmatched_files), summary
    predictions = storage.read_frame(lake.predictions("anon-cancer", days[-1]))
    assert len(predictions) == ROWS
    assert set(predictions["model_version"].astype(str)) == {"1"}
