"""Score a file of any size in bounded memory: read, validate, predict and write batch by batch.

Why: a whole-frame scorer needs the input, its typed copy and the predictions in memory at
once, so peak memory grows with the file. Here one batch (``scoring.batch_rows``) is in flight
(plus one prefetched), and the verdict is still the file's verdict:

- every batch is validated with the same contract (`validate_frame`); the batch verdicts are
  combined into one file-level `ValidationResult` (`merge_results`): row counts add up
  (``rows_in == rows_valid + rows_quarantined``), null shares are weighted by rows, and the
  batch-level limits (row count, null share, quarantine share) are judged on the whole file;
- uniqueness holds across the whole file: the typed values of each unique column are kept as
  64-bit hashes (8 bytes a row) and a value seen in an earlier batch is quarantined as a
  repeat, exactly as the whole-frame check keeps the first occurrence;
- predictions go to a parquet writer on a temp file that appears at the output URI only when
  the file passed its contract (atomic rename, or one S3 upload); quarantined rows are spooled
  per batch and written as one file at the end.

Where the validation cost goes: by default (``scoring.prefetch_batches: 0``) each batch is
validated, then predicted, so validation adds its time to the model's. A clean parquet batch
stays in arrow (`validate_table`): it is checked with arrow kernels, only the model's feature
columns become pandas, and the rows are written back from arrow (in all less than the bare
script's round trip through pandas; measured in benchmarks/README.md). A batch that fails a
check, needs parsing, repeats an id of an earlier batch or must render Data Docs goes through
`validate_frame` on pandas. With idle cores, ``prefetch_batches >= 1`` reads and validates the
next batch on a background thread while the model predicts the current one; when the
predictor's OpenMP threads already use every core it gains nothing (they and validation
compete for the same cores), so it is off by default.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from driftloop.configs.settings import DatasetSettings
from driftloop.tasks.adapters import storage
from driftloop.tasks.adapters.validation import validate_frame
from driftloop.tasks.core.contract import (
    ARROW_TYPES,
    REASONS_COLUMN,
    ROW_COLUMN,
    CleanTable,
    ValidatedBatch,
    ValidationResult,
    coerce_column,
    derive_columns,
    hash_values,
    merge_results,
    quarantine_frame,
    row_hashes,
    validate_table,
)
from driftloop.tasks.core.scoring import (
    DECISION_THRESHOLD,
    PredictionMeta,
    append_predictions,
    count_classes,
    model_frame,
    predict_scores,
    prediction_table,
)

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

UNIQUE = "expect_column_values_to_be_unique"
METADATA_KEY = "driftloop.fingerprint"
OUTCOME_KEY = "driftloop.outcome"

# ---------------------------------------------------------------- reading


def iter_raw_batches(
    uri: str, batch_rows: int, row_groups: list[int] | None = None
) -> Iterator[pd.DataFrame]:
    """Raw frames of at most `batch_rows` rows from a .parquet (optionally some row groups) or
    .csv file, never the whole file."""
    if storage.frame_format(uri)[0] == ".csv":
        if row_groups is not None:
            raise ValueError(f"{uri} is CSV: it has no row groups to select")
        return storage.iter_csv_batches(uri, batch_rows)
    return storage.iter_parquet_batches(uri, batch_rows, row_groups=row_groups)


def iter_raw_tables(
    uri: str, batch_rows: int, row_groups: list[int] | None = None
) -> Iterator[pa.Table | pd.DataFrame]:
    """`iter_raw_batches`, with parquet batches left in arrow (CSV ones are frames)."""
    if storage.frame_format(uri)[0] == ".csv":
        return iter_raw_batches(uri, batch_rows, row_groups)
    return storage.iter_parquet_tables(uri, batch_rows, row_groups=row_groups)


# ---------------------------------------------------------------- uniqueness across batches


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """The distinct uint64 values, sorted. Why not np.unique: on numpy 2.3+ it goes through a
    hash table first, which for distinct hashes is much slower than one sort."""
    return _dedupe_sorted(np.sort(values.astype(np.uint64, copy=False)))


def _dedupe_sorted(values: np.ndarray) -> np.ndarray:
    """Sorted values without repeats; no copy when there are none (hashes of a unique column
    usually have none), so a merge of the hash set's largest levels holds two arrays, not four."""
    if len(values) < 2:
        return values
    keep = np.empty(len(values), dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values if keep.all() else values[keep]


class HashSet64:
    """A set of uint64 hashes as sorted arrays merged like an LSM tree: 8 bytes a value,
    O(log n) membership, amortised O(n log n) inserts (a Python set would hold a boxed int
    and a table slot per value)."""

    def __init__(self) -> None:
        self._levels: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(level) for level in self._levels)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        if not self._levels or not len(hashes):
            return np.zeros(len(hashes), dtype=bool)
        # binary search with sorted queries walks each level in order, so its memory accesses
        # stay local: faster than random probes, sort included
        order = np.argsort(hashes)
        queries = hashes[order]
        hit = np.zeros(len(hashes), dtype=bool)
        for level in self._levels:
            pos = np.searchsorted(level, queries)
            pos[pos == len(level)] = 0
            hit |= level[pos] == queries
        found = np.empty(len(hashes), dtype=bool)
        found[order] = hit
        return found

    def add(self, hashes: np.ndarray) -> None:
        new = sorted_unique(hashes)
        if not len(new):
            return
        while self._levels and len(self._levels[-1]) <= 2 * len(new):
            # peak memory here bounds scoring's at 10M+ rows: the inputs are dropped as soon as
            # they are copied and the copy is sorted in place (was concat, sort, compress: 4x)
            merged = np.concatenate([self._levels.pop(), new])
            del new
            merged.sort()
            new = _dedupe_sorted(merged)
            del merged
        self._levels.append(new)

    def values(self) -> np.ndarray:
        if not self._levels:
            return np.empty(0, dtype=np.uint64)
        return sorted_unique(np.concatenate(self._levels))


def unique_columns(dataset: DatasetSettings) -> list[str]:
    return [c for c, spec in dataset.contract_columns(with_target=False).items() if spec.unique]


def typed_hashes(raw: pd.DataFrame, dataset: DatasetSettings, column: str) -> np.ndarray:
    """Hashes of the typed, non-null values of one column of a raw batch."""
    spec = dataset.columns[column]
    typed = coerce_column(raw[column], spec, column)
    return hash_values(typed[typed.notna()])


def cross_partition_duplicates(
    keys: list[dict[str, np.ndarray]],
) -> list[dict[str, np.ndarray]]:
    """For each partition (in order), the hashes it shares with any earlier partition.

    Those rows are repeats of an earlier row of the input, so the partition quarantines them,
    just as one process streaming the partitions in order would. Usually all empty.
    """
    seen: dict[str, HashSet64] = {}
    out: list[dict[str, np.ndarray]] = []
    for part in keys:
        shared: dict[str, np.ndarray] = {}
        for column, hashes in part.items():
            known = seen.setdefault(column, HashSet64())
            unique = sorted_unique(hashes)
            shared[column] = unique[known.contains(unique)]
            known.add(unique)
        out.append(shared)
    return out


# ---------------------------------------------------------------- validating batch by batch


class ContractStream:
    """Validates one file batch by batch; `result()` is the file's verdict.

    `prior` holds hashes (per unique column) of values that occur before this file's rows,
    e.g. in earlier partitions of the same input: rows with those values are repeats.
    """

    def __init__(
        self,
        dataset: DatasetSettings,
        *,
        source: str,
        now: datetime,
        row_offset: int = 0,
        prior: dict[str, np.ndarray] | None = None,
        docs_dir: str | None = None,
        day: date | None = None,
        digest: str = "",
    ) -> None:
        self.dataset = dataset
        self.digest = digest  # the input's sha256: a derived row id is digest + position
        self.source = source
        self.now = now
        self.day = day  # the batch's day: timestamps must fall on it, as at ingest
        self.offset = row_offset
        self.docs_dir = docs_dir
        self.columns = unique_columns(dataset)
        self.seen = {c: HashSet64() for c in self.columns}
        for column, hashes in (prior or {}).items():
            if column in self.seen and len(hashes):
                self.seen[column].add(hashes)
        self.results: list[ValidationResult] = []

    def _derived(self, raw: pd.DataFrame | pa.Table) -> Any:
        return derive_columns(
            raw, self.dataset, digest=self.digest, day=self.day, source=self.source,
            offset=self.offset,
        )  # fmt: skip

    def check(self, raw: pd.DataFrame) -> ValidatedBatch:
        """The batch's valid rows and quarantine, with row numbers counted from the file start."""
        return self._check(self._derived(raw))

    def _check(self, raw: pd.DataFrame) -> ValidatedBatch:
        docs = self.docs_dir if not self.results else None  # Data Docs: the first batch only
        batch = validate_frame(
            raw,
            self.dataset,
            with_target=False,
            source=self.source,
            now=self.now,
            docs_dir=docs,
            day=self.day,
        )
        batch = self._flag_earlier_repeats(raw, batch)
        self.results.append(batch.result)
        quarantine = batch.quarantine
        if len(quarantine) and self.offset:
            quarantine = quarantine.assign(**{ROW_COLUMN: quarantine[ROW_COLUMN] + self.offset})
        self.offset += len(raw)
        return ValidatedBatch(batch.valid, quarantine, batch.result, batch.docs_dir)

    def check_table(self, table: pa.Table) -> ValidatedBatch | CleanTable:
        """`check` for an arrow batch: a clean one is judged without pandas (`validate_table`)
        if none of its unique values occurred before; any other goes through `check`."""
        table = self._derived(table)
        clean = None
        # GE builds Data Docs from the first batch, unless they are only for failing batches
        if self.docs_dir is None or self.results or self.dataset.data_docs == "failures":
            clean = validate_table(
                table,
                self.dataset,
                with_target=False,
                source=self.source,
                now=self.now,
                day=self.day,
            )
        if clean is None or self._repeats_earlier(clean):
            return self._check(storage.table_to_frame(table, self.offset))
        for column, (present, hashes) in clean.unique_hashes.items():
            self.seen[column].add(hashes[present])
        self.results.append(clean.result)
        self.offset += table.num_rows
        return clean

    def _repeats_earlier(self, clean: CleanTable) -> bool:
        # a unique column missing from the hashes is all null here: it repeats nothing
        return any(
            self.seen[column].contains(hashes[present]).any()
            for column, (present, hashes) in clean.unique_hashes.items()
        )

    def result(self) -> ValidationResult:
        return merge_results(self.results, self.dataset, self.source)

    def _flag_earlier_repeats(self, raw: pd.DataFrame, batch: ValidatedBatch) -> ValidatedBatch:
        n = len(raw)
        repeats = np.zeros(n, dtype=bool)
        reasons = np.full(n, "", dtype=object)
        counts: dict[str, int] = {}
        unique_in_batch = {
            o.column for o in batch.result.outcomes if o.expectation == UNIQUE and o.success
        }
        for column in self.columns:
            # the typed column, coerced at most once and only if needed (hashes may be known)
            typed = functools.cache(
                functools.partial(coerce_column, raw[column], self.dataset.columns[column], column)
            )
            # hashed by the validation's screen, unless GE judged the batch (Data Docs)
            known = batch.unique_hashes.get(column)
            present, hashes = known if known is not None else row_hashes(typed())
            # rows GE already flags as repeats within the batch keep that one reason
            if column in unique_in_batch:
                first_here = np.ones(n, dtype=bool)
            else:
                first_here = ~typed().duplicated(keep="first").to_numpy()
            earlier = present & first_here & self.seen[column].contains(hashes)
            self.seen[column].add(hashes[present])
            counts[column] = int(earlier.sum())
            if counts[column]:
                shown = "'" + typed()[earlier].astype(str).str.slice(0, 60) + "'"
                text = (f"{column}: " + shown + " repeats an earlier row").to_numpy(dtype=object)
                reasons[earlier] = np.where(
                    reasons[earlier] == "", text, reasons[earlier] + "; " + text
                )
                repeats |= earlier
        if not repeats.any():
            return batch
        quarantined = np.zeros(n, dtype=bool)
        quarantined[batch.quarantine[ROW_COLUMN].to_numpy(dtype=np.int64)] = True
        valid_positions = np.flatnonzero(~quarantined)
        # already quarantined rows get the extra reason; valid ones move to quarantine
        q = batch.quarantine.copy()
        if len(q):
            extra = reasons[q[ROW_COLUMN].to_numpy(dtype=np.int64)]
            has = extra != ""
            q.loc[has, REASONS_COLUMN] = q.loc[has, REASONS_COLUMN] + "; " + extra[has]
        moved = np.flatnonzero(repeats & ~quarantined)
        keep = ~repeats[valid_positions]
        valid = batch.valid.loc[keep].reset_index(drop=True)
        if len(moved):
            contract = list(self.dataset.contract_columns(with_target=False))
            new = quarantine_frame(raw, contract, moved, reasons, self.source)
            q = pd.concat([q, new], ignore_index=True) if len(q) else new
            q = q.sort_values(ROW_COLUMN, kind="stable").reset_index(drop=True)
        outcomes = [
            o.model_copy(
                update={
                    "unexpected_count": o.unexpected_count + counts[o.column],
                    "unexpected_percent": 100.0 * (o.unexpected_count + counts[o.column]) / n,
                    "success": False,
                    "observed": f"{o.unexpected_count + counts[o.column]:,} repeats of earlier "
                    f"rows flagged ({counts[o.column]:,} of a value seen in an earlier batch), "
                    "first occurrence kept",
                }
            )
            if o.expectation == UNIQUE and counts.get(o.column or "", 0)
            else o
            for o in batch.result.outcomes
        ]
        result = batch.result.model_copy(
            update={
                "rows_valid": len(valid),
                "rows_quarantined": len(q),
                "outcomes": outcomes,
            }
        )
        return ValidatedBatch(valid, q, result, batch.docs_dir)


# ---------------------------------------------------------------- scoring a stream


class StreamOutcome(BaseModel):
    """What one streamed scoring run did (also kept in a partition's parquet footer)."""

    result: ValidationResult
    rows_scored: int
    positives: int
    score_sum: float
    output_uri: str | None
    quarantine_uri: str | None
    data_docs_dir: str | None = None
    class_counts: dict[str, int] = {}  # multiclass: rows per predicted class
    seconds: dict[str, float] = {}

    @property
    def positive_rate(self) -> float:
        return self.positives / self.rows_scored if self.rows_scored else float("nan")


@dataclass
class _Timer:
    seconds: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


def prefetch(items: Iterator[Any], depth: int) -> Iterator[Any]:
    """Produce `items` on a background thread, at most `depth` ahead (depth 0: inline).

    numpy, pyarrow and scikit-learn's predictors release the GIL, so reading and validating
    the next batch overlaps the prediction of the current one. Errors surface in the caller.
    """
    if depth < 1:
        yield from items
        return
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as err:  # handed to the consumer, which re-raises it
            put(_Failed(err))
            return
        put(_DONE)

    worker = threading.Thread(target=produce, name="driftloop-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join(timeout=30)


class _Discard(Exception):
    """The file failed its contract: its predictions must not appear."""


def _fixed_schema(table: pa.Table, dataset: DatasetSettings) -> pa.Schema:
    """The first batch's schema, with columns that were all-null there typed by the contract."""
    fields = []
    for f in table.schema:
        if pa.types.is_null(f.type):
            spec = dataset.columns.get(f.name)
            f = pa.field(f.name, ARROW_TYPES[spec.dtype] if spec else pa.string())
        fields.append(f)
    return pa.schema(fields, metadata=table.schema.metadata)


def _to_table(
    valid: pd.DataFrame | pa.Table,
    scores: np.ndarray,
    meta: PredictionMeta,
    schema: pa.Schema | None,
    uri: str,
) -> pa.Table:
    try:
        if isinstance(valid, pa.Table):
            table = append_predictions(valid, scores, meta)
        else:
            table = prediction_table(valid, scores, meta)
        return table if schema is None else table.select(schema.names).cast(schema)
    except (pa.ArrowException, ValueError, TypeError, KeyError) as err:
        raise storage.StorageError(
            f"cannot append a batch to {uri}: {err}; the batch's columns do not match the "
            "first batch's"
        ) from err


def merge_parquet_parts(parts: list[str], uri: str) -> str:
    """Write spooled parquet parts as one file at `uri`; columns whose type differs between
    parts (raw values of quarantined rows) become strings. One part in memory at a time."""
    schemas = [pq.read_schema(p) for p in parts]
    names = list(schemas[0].names)
    fields = []
    for name in names:
        types = {s.field(name).type for s in schemas} - {pa.null()}
        if len(types) == 1:
            fields.append(pa.field(name, types.pop()))
        elif types <= {pa.int64(), pa.float64()}:
            fields.append(pa.field(name, pa.float64()))
        else:
            fields.append(pa.field(name, pa.string() if types else pa.null()))
    schema = pa.schema(fields)
    with storage.atomic_output(uri) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for part in parts:
            table = pq.read_table(part)
            writer.write_table(table.select(names).cast(schema))
    return uri


def score_stream(
    *,
    source: str,
    model: Pipeline,
    dataset: DatasetSettings,
    meta: PredictionMeta,
    output_uri: str | None,
    quarantine_uri: str,
    now: datetime,
    batch_rows: int,
    chunk_rows: int,
    prefetch_batches: int = 0,
    row_groups: list[int] | None = None,
    row_offset: int = 0,
    prior: dict[str, np.ndarray] | None = None,
    docs_dir: str | None = None,
    metadata: dict[str, str] | None = None,
    write_when_blocked: bool = False,
    run_id: str | None = None,
    day: date | None = None,
) -> StreamOutcome:
    """Validate, predict and write `source` batch by batch; returns the file's verdict.

    Predictions appear at `output_uri` (None: dry run) only if the file passed its contract,
    unless `write_when_blocked` (partitions, whose verdict is judged with the others). The
    quarantine is always written when there is one (rows tagged with `run_id`). `metadata`
    and the outcome go into the parquet footer.
    """
    timer = _Timer()
    stream = ContractStream(
        dataset,
        source=source,
        now=now,
        row_offset=row_offset,
        prior=prior,
        docs_dir=docs_dir,
        day=day,
        digest=meta.input_digest,
    )

    def validated() -> Iterator[ValidatedBatch | CleanTable]:
        raw_batches = iter_raw_tables(source, batch_rows, row_groups)
        while True:
            with timer("read"):
                raw = next(raw_batches, None)
            if raw is None:
                return
            with timer("validate"):
                if isinstance(raw, pa.Table):
                    checked = stream.check_table(raw)
                else:
                    checked = stream.check(raw)
            yield checked

    spool = tempfile.mkdtemp(prefix="driftloop-quarantine-")
    parts: list[str] = []
    rows = positives = 0
    score_sum = 0.0
    class_counts: dict[str, int] = {}
    written: str | None = None
    quarantine_written: str | None = None
    try:
        with contextlib.ExitStack() as stack:
            tmp = stack.enter_context(storage.atomic_output(output_uri)) if output_uri else None
            writer: pq.ParquetWriter | None = None
            schema: pa.Schema | None = None
            stack.enter_context(_collector_sees_new_objects_only())
            for batch in prefetch(validated(), prefetch_batches):
                # Great Expectations' per-batch objects (when a batch fails a check) form
                # reference cycles that keep the previous batch's frames alive until the
                # cyclic collector happens to run, so RSS would grow with the input.
                # Collecting once per batch keeps it flat.
                gc.collect()
                if isinstance(batch, ValidatedBatch) and len(batch.quarantine):
                    with timer("quarantine"):
                        part = os.path.join(spool, f"{len(parts):06d}.parquet")
                        bad = batch.quarantine
                        if run_id is not None:
                            bad = bad.assign(_dq_run_id=run_id)  # as ingest stores them
                        storage.write_frame(bad, part)
                        parts.append(part)
                if not batch.result.rows_valid:
                    continue
                with timer("predict"):
                    valid: pd.DataFrame | pa.Table
                    if isinstance(batch, CleanTable):  # stays arrow but for the model's columns
                        valid, features = batch.table, model_frame(batch.table, dataset)
                    else:
                        valid = features = batch.valid
                    scores = predict_scores(model, features, dataset, chunk_rows)
                    del features
                rows += len(scores)
                if dataset.task == "multiclass":
                    count_classes(scores, class_counts)
                else:
                    positives += int((scores >= DECISION_THRESHOLD).sum())
                score_sum += float(scores.sum())
                if tmp is None:
                    continue
                with timer("write"):
                    table = _to_table(valid, scores, meta, schema, output_uri or "")
                    if writer is None:
                        schema = _fixed_schema(table, dataset)
                        table = table.cast(schema)
                        writer = stack.enter_context(pq.ParquetWriter(tmp, schema))
                    writer.write_table(table)
            if not stream.results:  # no batch at all: let the contract say why
                with timer("validate"):
                    stream.check(storage.read_frame(source))
            result = stream.result()
            # the quarantine is stored before predictions can appear: nothing is ever lost
            if parts:
                with timer("quarantine"):
                    quarantine_written = merge_parquet_parts(parts, quarantine_uri)
            if tmp is not None:
                if not (result.success or write_when_blocked) or writer is None:
                    raise _Discard
                stored = {
                    "result": result.model_dump(mode="json"),
                    "rows_scored": rows,
                    "positives": positives,
                    "score_sum": score_sum,
                    "class_counts": class_counts,
                    "quarantine_uri": quarantine_written,
                }
                writer.add_key_value_metadata({**(metadata or {}), OUTCOME_KEY: json.dumps(stored)})
                written = output_uri
    except _Discard:
        written = None
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    if written is not None:
        remove_crashed_writes(written)
    return StreamOutcome(
        result=result,
        rows_scored=rows,
        positives=positives,
        score_sum=score_sum,
        class_counts=class_counts,
        output_uri=written,
        quarantine_uri=quarantine_written,
        data_docs_dir=docs_dir if docs_dir and os.path.isfile(f"{docs_dir}/index.html") else None,
        seconds=timer.seconds,
    )


def remove_crashed_writes(uri: str) -> list[str]:
    """Delete temp files a killed writer of `uri` left beside it (`.<name>.<token>.tmp`).

    Why: a worker killed mid-write leaves its temp file; once a rerun has stored the output,
    the folder must hold exactly that one output. Called only after our own write succeeded."""
    folder, name = os.path.split(uri)
    prefix = f".{name}."
    stale = [t for t in storage.list_temp_files(folder) if os.path.basename(t).startswith(prefix)]
    return [t for t in stale if storage.delete(t)]


@contextlib.contextmanager
def _collector_sees_new_objects_only() -> Iterator[None]:
    """gc.freeze(): the many long-lived objects of the imported libraries are left out of
    every collection until the stream ends, so a per-batch gc.collect() walks only what is new
    instead of all of them (see benchmarks/README.md); the cycles a batch creates are still
    collected."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def fingerprint(**parts: Any) -> str:
    """A stable digest of what determines a partition's output (input, model, contract)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()
