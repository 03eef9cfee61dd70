"""The drift history: one parquet file per check, read back as the policy's memory and plotted.

Why one file per check under a prefix: appending to one parquet object is impossible on S3 and
racy locally; a new object per check is atomic everywhere and needs no lock. The history is
"long": one row per feature score, signal, realised metric and decision, so new signals never
change its schema.

Why compacted files: a check reads the whole history, so a year of daily checks would read
365 objects per check. Every `COMPACT_AFTER` checks, the history is written once more as one
file under `compacted/`, named by how many checks it holds; a reader takes the newest one and
only the check files it does not hold (their check ids are in the names). Check files are never
deleted, so a compaction written twice at once, or a reader between two, sees the same history.
"""

from __future__ import annotations

import io
import math
import posixpath
from datetime import datetime

import pandas as pd

from driftloop.tasks.adapters import storage
from driftloop.tasks.core.monitoring import Assessment
from driftloop.tasks.core.policy import CheckRecord, PolicyDecision

COLUMNS: tuple[str, ...] = (
    "check_id",
    "checked_at",
    "model",
    "window_start",
    "window_end",
    "baseline_version",
    "kind",
    "name",
    "comparison",
    "value",
    "threshold",
    "breached",
    "detail",
)


class HistoryError(ValueError):
    """A history file is not what a drift check writes; the message names it."""


def history_rows(
    decision: PolicyDecision, assessment: Assessment, checked_at: datetime
) -> pd.DataFrame:
    """The rows one check appends: feature scores, signals, realised metrics, the decision."""
    common = {
        "check_id": decision.check_id,
        "checked_at": pd.Timestamp(checked_at),
        "model": decision.model_name,
        "window_start": str(decision.window_start),
        "window_end": str(decision.window_end),
        "baseline_version": decision.baseline_version,
    }
    rows: list[dict[str, object]] = []
    for s in assessment.scores:
        rows.append(
            {
                "kind": "feature",
                "name": s.feature,
                "comparison": s.comparison,
                "value": s.score,
                "threshold": s.threshold,
                "breached": s.drifted,
                "detail": s.method + (f": {s.note}" if s.note else ""),
            }
        )
    for sig in assessment.signals.values():
        rows.append(
            {
                "kind": "signal",
                "name": sig.name,
                "comparison": "",
                "value": sig.value,
                "threshold": sig.threshold,
                "breached": sig.breached,
                "detail": sig.detail,
            }
        )
    realised = assessment.realised
    if realised is not None:
        for metric, value in realised.metrics.items():
            rows.append(_metric_row(metric, value, f"{realised.labelled} labelled rows"))
        for sl in realised.slices:
            rows.append(_metric_row(f"slice:{sl.column}={sl.value}:{sl.metric}", sl.candidate, ""))
        rows.append(
            _metric_row(
                "labels:unmatched",
                float(realised.unmatched_labels),
                ", ".join(realised.unmatched_examples),
            )
        )
        rows.append(_metric_row("labels:pending", float(realised.pending), ""))
    rows.append(
        {
            "kind": "decision",
            "name": decision.rule,
            "comparison": "",
            "value": float(decision.streak),
            "threshold": math.nan,
            "breached": decision.retrain,
            "detail": decision.model_dump_json(),
        }
    )
    frame = pd.DataFrame([{**common, **row} for row in rows], columns=list(COLUMNS))
    return frame.astype({"value": "float64", "threshold": "float64", "breached": "bool"})


def _metric_row(name: str, value: float, detail: str) -> dict[str, object]:
    return {
        "kind": "metric",
        "name": name,
        "comparison": "",
        "value": value,
        "threshold": math.nan,
        "breached": False,
        "detail": detail,
    }


COMPACT_AFTER = 30
COMPACTED = "compacted"


def check_file(prefix: str, decision: PolicyDecision) -> str:
    return storage.join(prefix, f"{decision.window_end}-{decision.check_id}.parquet")


def append(prefix: str, rows: pd.DataFrame, decision: PolicyDecision) -> str:
    """Write this check's rows as their own file; returns its URI (the decision record).
    Every `COMPACT_AFTER` checks, the history is also written as one compacted file: whether
    one is due is read off the names (one listing), so the other checks read nothing back."""
    uri = storage.write_frame(rows, check_file(prefix, decision))
    newest, checks = _listing(prefix)
    if len(checks) - (_held(newest) if newest else 0) >= COMPACT_AFTER:
        history = _read_parts(prefix, newest, checks)
        held = history["check_id"].nunique()
        storage.write_frame(history, storage.join(prefix, COMPACTED, f"{held:08d}.parquet"))
    return uri


def read(prefix: str) -> pd.DataFrame:
    """Every check under the prefix, oldest first (empty frame when there is none yet)."""
    newest, checks = _listing(prefix)
    return _read_parts(prefix, newest, checks)


def _listing(prefix: str) -> tuple[str | None, list[str]]:
    """The newest compacted file (None: none yet) and every check file, from one listing."""
    uris = storage.list_uris(prefix, ".parquet")
    folder = storage.join(prefix, COMPACTED) + "/"
    compacted = [u for u in uris if u.startswith(folder)]
    checks = [u for u in uris if not u.startswith(folder)]
    return (max(compacted, key=_held) if compacted else None), checks


def _held(compacted: str) -> int:
    """How many checks a compacted file holds: its name (check files are never deleted, so
    the check files past that count are the ones it does not hold)."""
    name = posixpath.basename(compacted).removesuffix(".parquet")
    if not name.isdigit():
        raise HistoryError(
            f"{compacted} is not a compacted drift history (named by its check count, e.g. "
            f"00000030.parquet); move it out of {posixpath.dirname(compacted)}"
        )
    return int(name)


def _check_id(uri: str) -> str:
    """The check id in a check file's name (`<window end>-<check id>.parquet`)."""
    name = posixpath.basename(uri).removesuffix(".parquet")
    return name[len("YYYY-MM-DD-") :]


def _read_parts(prefix: str, newest: str | None, checks: list[str]) -> pd.DataFrame:
    """The newest compacted history and the check files it does not hold (by check id)."""
    if newest is None:
        return combine([_read_one(prefix, uri) for uri in checks])
    compacted = _read_one(prefix, newest)
    held = set(compacted["check_id"].astype(str))
    pending = [u for u in checks if _check_id(u) not in held]
    return combine([compacted] + [_read_one(prefix, uri) for uri in pending])


def _read_one(prefix: str, uri: str) -> pd.DataFrame:
    frame = storage.read_frame(uri)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise HistoryError(
            f"{uri} is not a drift-check history file (missing columns {missing}); move it "
            f"out of {prefix}"
        )
    return frame


def combine(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """History files (or a history and this check's rows) as one history, oldest first."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=list(COLUMNS))
    return pd.concat(frames, ignore_index=True).sort_values(
        ["window_end", "checked_at"], kind="stable"
    )


def decisions(history: pd.DataFrame) -> list[PolicyDecision]:
    rows = history[history["kind"] == "decision"]
    return [PolicyDecision.model_validate_json(text) for text in rows["detail"]]


def records(history: pd.DataFrame) -> list[CheckRecord]:
    """What the policy remembers: one record per earlier check."""
    rows = history[history["kind"] == "decision"]
    return [
        PolicyDecision.model_validate_json(text).record(pd.Timestamp(at).to_pydatetime())
        for at, text in zip(rows["checked_at"], rows["detail"], strict=True)
    ]


def plot_png(history: pd.DataFrame, title: str) -> bytes:
    """Drift scores, signals and realised metrics over time, retrains marked; a PNG image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(11, 9), sharex=True)
    try:
        if history.empty:
            axes[0].set_title(f"{title}: no checks yet")
            return _png(fig)
        h = history.copy()
        h["when"] = pd.to_datetime(h["window_end"])
        skew = h[(h["kind"] == "feature") & (h["comparison"] == "skew")]
        for name, part in skew.groupby("name"):
            axes[0].plot(part["when"], part["value"], marker=".", label=str(name))
        if not skew.empty:
            axes[0].axhline(skew["threshold"].median(), color="red", ls="--", lw=1)
        axes[0].set_ylabel("feature drift vs baseline")
        if axes[0].get_legend_handles_labels()[0]:
            axes[0].legend(fontsize=7, ncol=4)
        sig = h[h["kind"] == "signal"]
        for name in ("feature_drift", "prediction_drift", "production_drift", "data_quality"):
            part = sig[sig["name"] == name]
            if not part.empty:
                axes[1].plot(part["when"], part["value"], marker="o", label=name)
        axes[1].set_ylabel("signal value")
        if axes[1].get_legend_handles_labels()[0]:
            axes[1].legend(fontsize=8)
        met = h[(h["kind"] == "metric") & ~h["name"].str.contains(":")]
        for name in ("roc_auc", "average_precision"):
            part = met[met["name"] == name]
            if not part.empty:
                axes[2].plot(part["when"], part["value"], marker="o", label=f"realised {name}")
        axes[2].set_ylabel("realised metric")
        if axes[2].get_legend_handles_labels()[0]:
            axes[2].legend(fontsize=8)
        dec = h[h["kind"] == "decision"]
        for when in dec.loc[dec["breached"], "when"]:
            for ax in axes:
                ax.axvline(when, color="green", lw=2, alpha=0.5)
        axes[0].set_title(f"{title} (green: retrain decided)")
        fig.autofmt_xdate()
        return _png(fig)
    finally:
        plt.close(fig)


def _png(fig: object) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")  # type: ignore[attr-defined]
    return buffer.getvalue()


def decisions_markdown(history: pd.DataFrame, plot_uri: str | None, last: int = 15) -> str:
    """The recent decision records as a table, with the plot's location."""
    lines = ["# Drift history", ""]
    if plot_uri:
        lines += [f"Plot over time: [{plot_uri}]({_link(plot_uri)})", ""]
    lines += [
        "| window end | baseline | rule | retrain | streak | reason |",
        "|---|---|---|:---:|---:|---|",
    ]
    for d in decisions(history)[-last:]:
        reason = d.reason.replace("|", "\\|")
        lines.append(
            f"| {d.window_end} | v{d.baseline_version} | {d.rule} | "
            f"{'yes' if d.retrain else 'no'} | {d.streak} | {reason} |"
        )
    return "\n".join(lines) + "\n"


def _link(uri: str) -> str:
    return storage.browser_link(uri)
