"""Read and write frames and bytes by URI: local paths or ``s3://bucket/key``.

Why one module: every flow must run unchanged against a local folder (the embedded default)
and S3 (production), so all I/O goes through these functions and :class:`Lake` is the only
place that knows the lake layout. S3 goes through plain boto3; the endpoint and credentials
come from boto3's standard chain (``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID``, profiles...),
so AWS, MinIO and moto work alike. Transient S3 errors are retried by botocore's standard
retry mode. Writes are all-or-nothing: a reader never sees a half-written file or object.
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import datetime
import functools
import gzip
import hashlib
import io
import lzma
import os
import re
import secrets
import threading
import urllib.parse
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

FRAME_SUFFIXES: tuple[str, ...] = (".parquet", ".csv")
#: Compressed input is read as it comes: the last suffix names the compression, the one
#: before it the format (`sales.csv.gz`, `part.parquet.zip`). Output is never compressed.
COMPRESSIONS: dict[str, str] = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz", ".zip": "zip"}
_CHUNK = 1 << 20
_MULTIPART_THRESHOLD = 64 << 20
_LIST_PAGE_SIZE = 1000
_RETRIES = {"mode": "standard", "max_attempts": 5}
_client_lock = threading.Lock()


class StorageError(OSError):
    """An I/O problem; the message names the URI and what to do about it."""


class NotFoundError(StorageError):
    """The file or object does not exist."""


class UnreadableFileError(StorageError):
    """The file exists but its bytes cannot be read as what its name says (corrupt, truncated,
    another format or encoding). Its own type so on-call is routed to the right runbook entry."""


#: What a bad raw file's message says to do: raw input is immutable, a fix is a new delivery.
_REDELIVER = "deliver a corrected file for the day; the raw file was not changed"


class S3Error(StorageError):
    """An S3 request failed at the network, credential or bucket level (not a missing key)."""


class MissingBucketError(S3Error, NotFoundError):
    """The bucket itself does not exist: a wrong `storage.root` or an endpoint without it."""


# ---------------------------------------------------------------- URIs


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise StorageError(f"{uri!r} has no bucket; expected s3://bucket/key")
    return bucket, key


def join(root: str, *parts: str) -> str:
    """Join path parts under a local folder or an s3:// prefix (always '/' for S3)."""
    if is_s3(root):
        pieces = [root.rstrip("/")] + [p.strip("/") for p in parts if p.strip("/")]
        return "/".join(pieces)
    return os.path.join(root, *parts)


def _suffix(uri: str) -> str:
    return Path(uri.rstrip("/")).suffix.lower()


#: How long a presigned link in an artifact or message opens: S3's longest for SigV4 (7 days).
LINK_EXPIRY_SECONDS = 7 * 24 * 3600


#: Set by the stack (`make up`, deployments/stack.py) for its worker's flows: the local folder
#: it serves read-only over HTTP, and the URL it serves it at.
REPORTS_DIR_ENV = "DRIFTLOOP_REPORTS_DIR"
REPORTS_URL_ENV = "DRIFTLOOP_REPORTS_URL"


def served_link(path: str) -> str | None:
    """The stack's HTTP URL of a local file under the folder it serves, else None."""
    folder = os.environ.get(REPORTS_DIR_ENV, "").strip()
    base = os.environ.get(REPORTS_URL_ENV, "").strip()
    if not folder or not base:
        return None
    try:
        inside = Path(path).absolute().relative_to(Path(folder).absolute())
    except ValueError:
        return None
    return base.rstrip("/") + "/" + urllib.parse.quote(inside.as_posix())


def browser_link(uri: str, expires_seconds: int = LINK_EXPIRY_SECONDS) -> str:
    """A link a browser can open: for s3:// a presigned GET on the S3 endpoint (served with the
    content type of its name, so an HTML report renders), valid `expires_seconds`; a local
    path the stack serves (`served_link`) as its http:// URL; any other local path as file://.
    Why: people click links in the UI and in Slack, where s3:// opens nothing.
    """
    if is_s3(uri):
        import mimetypes

        bucket, key = _split_s3(uri)
        params = {"Bucket": bucket, "Key": key}
        content_type = mimetypes.guess_type(key)[0]
        if content_type:
            params["ResponseContentType"] = content_type
        return _s3_call(
            uri,
            lambda: _s3().generate_presigned_url(
                "get_object", Params=params, ExpiresIn=expires_seconds
            ),
        )
    if "://" in uri:
        return uri
    return served_link(uri) or Path(uri).absolute().as_uri()


# ---------------------------------------------------------------- S3 client


@functools.cache
def _cached_client(pid: int, endpoint: str | None) -> Any:
    del pid  # part of the cache key only: boto3 clients must not cross a fork
    import boto3
    from botocore.config import Config

    with _client_lock:
        session = boto3.session.Session()
        return session.client("s3", config=Config(retries=_RETRIES))


def _s3() -> Any:
    """The process's S3 client, rebuilt when the endpoint env var changes."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return _cached_client(os.getpid(), endpoint)


def clear_client_cache() -> None:
    """Forget cached S3 clients, e.g. after changing credentials in the environment."""
    _cached_client.cache_clear()


def _s3_error(uri: str, err: Exception) -> StorageError:
    """Turn a boto error into our error type with a hint on what to check."""
    from botocore.exceptions import ClientError, NoCredentialsError

    if isinstance(err, NoCredentialsError):
        return S3Error(
            f"no S3 credentials for {uri}: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "or an AWS profile"
        )
    if isinstance(err, ClientError):
        code = str(err.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "404", "NotFound"):
            return NotFoundError(f"{uri} does not exist")
        if code == "NoSuchBucket":
            return MissingBucketError(f"bucket of {uri} does not exist: create it or fix the root")
        if code in ("PreconditionFailed", "412"):
            return StorageError(f"{uri} was replaced while being read: read it again")
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return S3Error(f"access to {uri} denied ({code}): check the S3 credentials")
        return S3Error(f"S3 request for {uri} failed ({code}): {err}")
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or "the default AWS endpoint"
    return S3Error(f"S3 request for {uri} failed against {endpoint}: {err}")


def _s3_call(uri: str, call: Callable[[], Any]) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return call()
    except (BotoCoreError, ClientError) as err:
        raise _s3_error(uri, err) from err


def _s3_put(uri: str, data: bytes | BinaryIO, size: int, content_type: str | None = None) -> None:
    """One PUT, or a multipart upload above 64 MiB; either way S3 shows all or nothing."""
    from boto3.s3.transfer import TransferConfig

    bucket, key = _split_s3(uri)
    if not key or key.endswith("/"):
        raise StorageError(f"{uri} names a prefix, not an object: add a file name")
    client = _s3()
    if size <= _MULTIPART_THRESHOLD:
        body = data if isinstance(data, bytes) else data.read()
        extra = {"ContentType": content_type} if content_type else {}
        _s3_call(uri, lambda: client.put_object(Bucket=bucket, Key=key, Body=body, **extra))
        return
    fileobj = io.BytesIO(data) if isinstance(data, bytes) else data
    config = TransferConfig(
        multipart_threshold=_MULTIPART_THRESHOLD, multipart_chunksize=_MULTIPART_THRESHOLD
    )
    _s3_call(uri, lambda: client.upload_fileobj(fileobj, bucket, key, Config=config))


class _S3RangeReader(io.RawIOBase):
    """A seekable read-only view of one S3 object through ranged GETs (for parquet streaming)."""

    def __init__(self, uri: str) -> None:
        super().__init__()
        self._uri = uri
        self._bucket, self._key = _split_s3(uri)
        head = _s3_call(uri, lambda: _s3().head_object(Bucket=self._bucket, Key=self._key))
        self._size = int(head["ContentLength"])
        self._etag = str(head["ETag"])  # pin the version: a replaced object fails, never mixes
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos >= self._size or len(view) == 0:
            return 0
        end = min(self._size, self._pos + len(view)) - 1
        rng = f"bytes={self._pos}-{end}"
        resp = _s3_call(
            self._uri,
            lambda: _s3().get_object(
                Bucket=self._bucket, Key=self._key, Range=rng, IfMatch=self._etag
            ),
        )
        data = resp["Body"].read()
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)


# ---------------------------------------------------------------- bytes


def exists(uri: str) -> bool:
    """True when a file (or S3 object) is stored at the URI; folders and prefixes are not."""
    if not is_s3(uri):
        return os.path.isfile(uri)
    bucket, key = _split_s3(uri)
    if not key:
        return False
    try:
        _s3_call(uri, lambda: _s3().head_object(Bucket=bucket, Key=key))
    except NotFoundError:
        # HEAD answers a bare 404 for a missing bucket too: ask the bucket, so a wrong root is
        # named as such (and paged as s3-unreachable) instead of reading as a missing file.
        _bucket_exists(uri, bucket)
        return False
    return True


def _bucket_exists(uri: str, bucket: str) -> None:
    """Raise MissingBucketError when the bucket itself is not there."""
    from botocore.exceptions import ClientError

    try:
        _s3().head_bucket(Bucket=bucket)
    except ClientError as err:
        if str(err.response.get("Error", {}).get("Code", "")) in ("404", "NoSuchBucket"):
            raise MissingBucketError(
                f"bucket {bucket!r} of {uri} does not exist: create it or fix storage.root"
            ) from err
        raise _s3_error(uri, err) from err
    except Exception as err:  # BotoCoreError: endpoint down
        raise _s3_error(uri, err) from err


def list_uris(prefix: str, suffix: str = "") -> list[str]:
    """Sorted URIs of files at any depth under a folder/prefix (hidden and temp files skipped).

    A missing local folder lists as empty; a missing bucket is a NotFoundError (wrong root).
    """
    if is_s3(prefix):
        bucket, key = _split_s3(prefix)
        if key and not key.endswith("/"):
            key += "/"

        def _list() -> list[str]:
            keys: list[str] = []
            pages = (
                _s3()
                .get_paginator("list_objects_v2")
                .paginate(Bucket=bucket, Prefix=key, PaginationConfig={"PageSize": _LIST_PAGE_SIZE})
            )
            for page in pages:
                keys.extend(item["Key"] for item in page.get("Contents", []))
            return keys

        return sorted(
            f"s3://{bucket}/{name}"
            for name in _s3_call(prefix, _list)
            if not name.endswith("/")
            and not name.rsplit("/", 1)[-1].startswith(".")
            and name.endswith(suffix)
        )
    if not os.path.isdir(prefix):
        return []
    found = []
    for folder, _dirs, files in os.walk(prefix):
        found.extend(
            os.path.join(folder, name)
            for name in files
            if not name.startswith(".") and name.endswith(suffix)
        )
    return sorted(found)


def read_bytes(uri: str) -> bytes:
    if is_s3(uri):
        bucket, key = _split_s3(uri)
        resp = _s3_call(uri, lambda: _s3().get_object(Bucket=bucket, Key=key))
        return _s3_call(uri, lambda: resp["Body"].read())
    try:
        return Path(uri).read_bytes()
    except FileNotFoundError as err:
        raise NotFoundError(f"{uri} does not exist") from err
    except IsADirectoryError as err:
        raise StorageError(f"{uri} is a folder, not a file") from err
    except OSError as err:
        raise StorageError(f"cannot read {uri}: {err}") from err


@contextlib.contextmanager
def _atomic_local(path: str) -> Iterator[str]:
    """Yield a temp path next to `path`; on success fsync and rename it over `path`.

    The temp file lives in the same folder so the rename is atomic, and is created with the
    umask-respecting mode a plain open() would give, so readers see the usual permissions.
    """
    target = Path(path)
    tmp = str(target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as err:
        raise StorageError(f"cannot write {path}: {err}; check the folder and permissions") from err
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # persist the rename itself; not all systems allow it
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_bytes(uri: str, data: bytes, content_type: str | None = None) -> str:
    """Write atomically; returns the URI. `content_type` is kept as S3 metadata only."""
    if is_s3(uri):
        _s3_put(uri, data, len(data), content_type)
        return uri
    try:
        with _atomic_local(uri) as tmp:
            Path(tmp).write_bytes(data)
    except StorageError:
        raise
    except OSError as err:
        raise StorageError(f"cannot write {uri}: {err}; check free space and permissions") from err
    return uri


def write_text(uri: str, text: str) -> str:
    return write_bytes(uri, text.encode("utf-8"))


def upload_folder(folder: str | Path, prefix: str) -> list[str]:
    """Copy a local folder's files under a folder or s3:// prefix, keeping relative paths.

    Why: Great Expectations 1.x writes Data Docs only to a local folder (it has no S3 store
    backend), so sites are built locally and published to the lake through here. S3 objects get
    a Content-Type so a browser (or a static-website bucket) renders the pages.
    """
    import mimetypes

    root = Path(folder)
    if not root.is_dir():
        raise NotFoundError(f"{root} is not a folder: nothing to upload")
    uris = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        content_type = mimetypes.guess_type(path.name)[0]
        target = join(prefix, *relative.split("/"))
        uris.append(write_bytes(target, path.read_bytes(), content_type))
    return uris


def size_of(uri: str) -> int:
    """Bytes stored at the URI (a NotFoundError when there is nothing)."""
    if is_s3(uri):
        bucket, key = _split_s3(uri)
        head = _s3_call(uri, lambda: _s3().head_object(Bucket=bucket, Key=key))
        return int(head["ContentLength"])
    try:
        return os.path.getsize(uri)
    except FileNotFoundError as err:
        raise NotFoundError(f"{uri} does not exist") from err
    except OSError as err:
        raise StorageError(f"cannot read {uri}: {err}") from err


def sha256_of(uri: str) -> str:
    """Hex SHA-256 of the stored bytes, streamed in 1 MiB chunks."""
    digest = hashlib.sha256()
    if is_s3(uri):
        bucket, key = _split_s3(uri)
        resp = _s3_call(uri, lambda: _s3().get_object(Bucket=bucket, Key=key))

        def _consume() -> None:
            for chunk in resp["Body"].iter_chunks(_CHUNK):
                digest.update(chunk)

        _s3_call(uri, _consume)
        return digest.hexdigest()
    try:
        with open(uri, "rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
    except FileNotFoundError as err:
        raise NotFoundError(f"{uri} does not exist") from err
    except OSError as err:
        raise StorageError(f"cannot read {uri}: {err}") from err
    return digest.hexdigest()


# ---------------------------------------------------------------- frames


def _frame_suffix(uri: str) -> str:
    suffix = _suffix(uri)
    if suffix not in FRAME_SUFFIXES:
        raise StorageError(
            f"{uri}: unknown file type {suffix or '(no suffix)'!r}; "
            f"use one of {', '.join(FRAME_SUFFIXES)}"
        )
    return suffix


def frame_format(uri: str) -> tuple[str, str | None]:
    """(".csv" or ".parquet", the compression or None) by the file's suffixes; an unknown
    suffix is an error naming the ones that are read."""
    suffixes = [s.lower() for s in Path(uri.rstrip("/")).suffixes]
    compression = COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    inner = suffixes[-2] if compression and len(suffixes) > 1 else None
    if compression is None:
        return _frame_suffix(uri), None
    if inner not in FRAME_SUFFIXES:
        raise StorageError(
            f"{uri}: a {compression}-compressed file must say what it holds before "
            f"{suffixes[-1]!r}: name it <name>.csv{suffixes[-1]} or <name>.parquet{suffixes[-1]}"
        )
    return inner, compression


def _decompressed(uri: str, binary: BinaryIO, compression: str) -> BinaryIO:
    """A stream of the decompressed bytes of `binary` (zip: its one file)."""
    if compression == "gzip":
        return gzip.GzipFile(fileobj=binary, mode="rb")  # type: ignore[return-value]
    if compression == "bzip2":
        return bz2.BZ2File(binary, mode="rb")  # type: ignore[return-value]
    if compression == "xz":
        return lzma.LZMAFile(binary, mode="rb")  # type: ignore[return-value]
    if not binary.seekable():
        binary = io.BytesIO(binary.read())
    try:
        archive = zipfile.ZipFile(binary)
    except zipfile.BadZipFile as err:
        raise StorageError(
            f"{uri} is named .zip but is not a zip archive ({err}): name it by what it holds"
        ) from err
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) != 1:
        names = [m.filename for m in members][:5]
        raise StorageError(
            f"{uri} is a zip archive of {len(members)} files {names}: a batch is one file; "
            "deliver one file per zip (or the plain file)"
        )
    return archive.open(members[0])  # type: ignore[return-value]


def _decompress(uri: str, data: bytes, compression: str) -> bytes:
    """The whole decompressed content, or an error saying the bytes are not `compression`."""
    try:
        with _decompressed(uri, io.BytesIO(data), compression) as stream:
            return stream.read()
    except StorageError:
        raise
    except _DECOMPRESSION_ERRORS as err:
        raise _not_compressed(uri, compression, err) from err


_DECOMPRESSION_ERRORS = (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile, ValueError)


def _not_compressed(uri: str, compression: str, err: Exception) -> StorageError:
    return StorageError(
        f"{uri} is named as {compression}-compressed but cannot be decompressed ({err}): "
        "it is truncated or not that format; deliver it again or name it by what it holds. "
        "The raw file was not changed"
    )


class _Decompressing(io.RawIOBase):
    """The decompressed bytes of a raw stream, read as they are asked for (a 2 GB .csv.gz is
    never held whole); a fault met mid-way is named like one met at the start."""

    def __init__(self, uri: str, raw: BinaryIO, compression: str) -> None:
        self._uri, self._raw, self._compression = uri, raw, compression
        try:
            self._stream = _decompressed(uri, raw, compression)
        except BaseException:
            raw.close()
            raise

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._stream.read(len(buffer))
        except _DECOMPRESSION_ERRORS as err:
            raise _not_compressed(self._uri, self._compression, err) from err
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
            self._raw.close()
        super().close()


def _open_raw(uri: str) -> BinaryIO:
    """The file's bytes as a stream: the S3 GET body, or the local file."""
    if is_s3(uri):
        bucket, key = _split_s3(uri)
        resp = _s3_call(uri, lambda: _s3().get_object(Bucket=bucket, Key=key))
        return resp["Body"]  # type: ignore[no-any-return]
    try:
        return open(uri, "rb", buffering=1 << 16)
    except FileNotFoundError as err:
        raise NotFoundError(f"{uri} does not exist") from err
    except OSError as err:
        raise StorageError(f"cannot read {uri}: {err}") from err


def _spooled(uri: str, compression: str) -> BinaryIO:
    """A compressed parquet decompressed to a temporary file (parquet needs random access; a
    file on disk, not the bytes in memory), deleted when closed."""
    import shutil
    import tempfile

    spool = tempfile.TemporaryFile(prefix="driftloop-decompressed-")  # noqa: SIM115
    try:
        with _Decompressing(uri, _open_raw(uri), compression) as stream:
            shutil.copyfileobj(stream, spool, 1 << 20)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool  # type: ignore[return-value]


def _not_parquet(uri: str, err: Exception) -> StorageError:
    """A parquet reader's failure, with what the file really holds when that can be told."""
    kind = _sniff(_head(uri))
    if kind is None and _looks_like_csv(_head(uri)):
        return UnreadableFileError(
            f"{uri} is not a readable parquet file: this is a CSV file named .parquet (its first "
            "line is comma-separated text). Deliver it again as .csv, or written as parquet; the "
            "raw file was not changed"
        )
    if kind is not None and kind[0] != "a parquet file":
        return UnreadableFileError(
            f"{uri} is not a readable parquet file: it holds {kind[0]}. {kind[1]}; the raw file "
            "was not changed"
        )
    return UnreadableFileError(
        f"{uri} is not a readable parquet file (corrupt, truncated or another format): {err}; "
        f"{_REDELIVER}"
    )


def _head(uri: str, size: int = 4096) -> bytes:
    """The first bytes of a file, to name what it holds; empty when they cannot be read."""
    try:
        if is_s3(uri):
            bucket, key = _split_s3(uri)
            resp = _s3().get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{size - 1}")
            return bytes(resp["Body"].read())
        with open(uri, "rb") as handle:
            return handle.read(size)
    except Exception:  # only a better message is at stake: never fail on it
        return b""


def _looks_like_csv(head: bytes) -> bool:
    try:
        first = head.decode("utf-8-sig").split("\n", 1)[0]
    except UnicodeDecodeError:
        return False
    return "," in first and first.isprintable()


# (what the bytes are, what to do) by their first bytes: named, never "binary data"
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (
        b"\x1f\x8b",
        "gzip-compressed data (the file is gzip-compressed)",
        "Name it <name>.csv.gz (read as it is), or decompress it (gunzip) and deliver the "
        "plain file",
    ),
    (
        b"PK\x03\x04",
        "a zip archive (e.g. an Excel .xlsx workbook)",
        "Export the sheet as CSV (UTF-8, comma-separated) or unzip it, and deliver that",
    ),
    (
        b"PAR1",
        "a parquet file",
        "Give it the suffix of its real format (.parquet)",
    ),
    (
        b"\xff\xfe",
        "UTF-16 text (the file is UTF-16 encoded)",
        "Save it as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8) and deliver it again",
    ),
    (
        b"\xfe\xff",
        "UTF-16 text (the file is UTF-16 encoded)",
        "Save it as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8) and deliver it again",
    ),
    (
        b"\x28\xb5\x2f\xfd",
        "zstd-compressed data (the file is zstd-compressed)",
        "Decompress it and deliver the plain file",
    ),
    (
        b"BZh",
        "bzip2-compressed data (the file is bzip2-compressed)",
        "Name it <name>.csv.bz2 (read as it is), or decompress it and deliver the plain file",
    ),
)


def _sniff(head: bytes) -> tuple[str, str] | None:
    """(what the file holds, what to do) when its first bytes say it is not UTF-8 text."""
    for magic, kind, action in _MAGIC:
        if head.startswith(magic) and (magic != b"BZh" or head[3:4].isdigit()):
            return kind, action
    sample = head[:512]
    if len(sample) >= 4 and b"\x00" in sample:
        even, odd = sample[0::2], sample[1::2]
        if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.1 * len(even):
            return (
                "UTF-16 text without a byte-order mark (the file is UTF-16 encoded)",
                "Save it as UTF-8 (e.g. iconv -f UTF-16LE -t UTF-8) and deliver it again",
            )
        if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.1 * len(odd):
            return (
                "UTF-16 text without a byte-order mark (the file is UTF-16 encoded)",
                "Save it as UTF-8 (e.g. iconv -f UTF-16BE -t UTF-8) and deliver it again",
            )
    return None


def _open_parquet(uri: str, source: Any) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(source)
    except StorageError:
        raise
    except (pa.ArrowException, OSError) as err:
        raise _not_parquet(uri, err) from err


def _read_parquet(uri: str, source: Any, columns: list[str] | None) -> pd.DataFrame:
    parquet = _open_parquet(uri, source)
    if columns is not None:
        missing = [c for c in columns if c not in parquet.schema_arrow.names]
        if missing:
            raise UnreadableFileError(
                f"{uri} has no column(s) {missing}; it has {parquet.schema_arrow.names}"
            )
    try:
        table = parquet.read(columns=columns, use_pandas_metadata=True)
    except (pa.ArrowException, OSError) as err:
        raise _not_parquet(uri, err) from err
    return table.to_pandas()


def _not_text(uri: str, head: bytes) -> StorageError | None:
    """Name a file that is not CSV text by what it holds (gzip, UTF-16, parquet...)."""
    found = _sniff(head)
    if found is None:
        if b"\x00" not in head or _text_with_nuls(head):
            return None  # text: `_CheckedCsv` names the NUL bytes by line and column
        found = ("binary data", "Check that the path names the right file")
    kind, action = found
    return UnreadableFileError(
        f"{uri} is not CSV text: it holds {kind}. {action}, or give it the suffix of its real "
        "format; the raw file was not changed"
    )


def _text_with_nuls(head: bytes) -> bool:
    """UTF-8 text with a few NUL bytes in it (a damaged CSV), not a binary file."""
    try:
        head[:-4].replace(b"\x00", b"").decode("utf-8")
    except UnicodeDecodeError:
        return False
    return head.count(0) < 0.05 * len(head)


def _read_csv(uri: str, data: bytes, columns: list[str] | None) -> pd.DataFrame:
    fault = _not_text(uri, data[:4096])
    if fault is not None:
        raise fault
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UnreadableFileError(
            f"{uri} is not UTF-8 text (byte {data[err.start]:#04x} at offset {err.start}); "
            "re-save the CSV as UTF-8, e.g. iconv -f latin1 -t utf-8"
        ) from err
    if not text.strip():
        raise UnreadableFileError(f"{uri} is empty (no header row): {_REDELIVER}")
    checked = _CheckedCsv(uri, io.StringIO(text))
    try:
        # Only empty fields are missing: a category such as "NA" or "null" stays a string.
        return pd.read_csv(checked, usecols=columns, keep_default_na=False, na_values=[""])
    except pd.errors.ParserError as err:
        raise _malformed(uri, err) from err
    except ValueError as err:
        if isinstance(err, StorageError):
            raise
        raise UnreadableFileError(
            f"{uri}: requested columns {columns} not all present: {err}"
        ) from err


def _malformed(uri: str, err: Exception) -> StorageError:
    return UnreadableFileError(
        f"{uri} is not a well-formed CSV: {str(err).strip()}. A value holding a comma, quote or "
        "line break must be quoted: fix the producer's export and deliver the file again; the "
        "raw file was not changed"
    )


class _CheckedCsv:
    """A text stream pandas reads CSV from, checked as it passes (whole file or streamed):

    - the header's names must be unique (pandas would rename a repeat to `age.1`);
    - NUL bytes are named by line and column (pandas may turn the value into a null);
    - a file whose last line has no newline and too few fields is named as cut off.
    Each fault raises `StorageError` from inside the read, so no batch of it goes on.
    """

    def __init__(self, uri: str, handle: Any) -> None:
        self._uri = uri
        self._handle = handle
        self._lines = 0  # complete lines before the current tail
        self._tail = ""  # text after the last line break (bounded: see read)
        self._header: list[str] | None = None
        self._start = ""  # the text up to the first data row, until both are checked
        self._started = False
        self._ended = False

    def __iter__(self) -> Iterator[str]:  # pandas wants a file-like object to be iterable
        return self

    def __next__(self) -> str:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def readline(self) -> str:  # pragma: no cover - the C parser reads blocks
        return self.read(1 << 16)

    def read(self, size: int = -1) -> str:
        data = self._handle.read(size)
        if not isinstance(data, str):  # pragma: no cover - a binary handle is a bug
            raise TypeError("_CheckedCsv reads text")
        if not data:
            if not self._ended:
                self._ended = True
                self._check_end()
            return data
        if not self._started:
            self._check_start(data)
        nul = data.find("\x00")
        if nul >= 0:
            raise self._nul(data, nul)
        breaks = data.count("\n")
        if breaks:
            self._lines += breaks
            self._tail = data[data.rfind("\n") + 1 :]
        else:
            self._tail = (self._tail + data)[-(1 << 20) :]
        return data

    def _check_start(self, data: str) -> None:
        """The header, then the first data row: with more fields than the header, pandas
        would silently take the leading values as an index and shift the others."""
        self._start = (self._start + data)[: 1 << 20]
        lines = self._start.split("\n", 2)
        if self._header is None and len(lines) > 1:
            self._read_header(lines[0].rstrip("\r"))
        if self._header is None or (len(lines) < 3 and len(self._start) < 1 << 20):
            return
        self._started = True
        row = lines[1].rstrip("\r")
        if '"' in row or "\x00" in row:
            return  # quoted values may span lines; pandas' tokenizer judges them
        fields = next(csv.reader([row]), [])
        if len(fields) > len(self._header):
            raise _malformed(
                self._uri,
                ValueError(
                    f"line 2 has {len(fields)} fields but the header has {len(self._header)} "
                    f"(pandas would silently use the first {len(fields) - len(self._header)} "
                    "values as an index)"
                ),
            )

    def _read_header(self, first: str) -> None:
        self._header = next(csv.reader([first]), [])
        repeated = sorted({n for n in self._header if self._header.count(n) > 1})
        if repeated:
            where = {n: [i + 1 for i, h in enumerate(self._header) if h == n] for n in repeated}
            listed = ", ".join(f"'{n}' (columns {where[n]})" for n in repeated)
            raise UnreadableFileError(
                f"{self._uri}: the header names {listed} more than once, so which values belong "
                "to the contract's column is ambiguous (pandas would silently rename the copy). "
                "Fix the producer so every column name is unique and deliver the file again; "
                "the raw file was not changed"
            )

    def _nul(self, data: str, at: int) -> StorageError:
        line = self._lines + data.count("\n", 0, at) + 1
        start = data.rfind("\n", 0, at) + 1
        before = (self._tail if start == 0 else "") + data[start:at]
        field = len(next(csv.reader([before]), [""])) - 1 if before else 0
        column = ""
        if self._header is not None and 0 <= field < len(self._header):
            column = f", column '{self._header[field]}'"
        elif field >= 0:
            column = f", field {field + 1}"
        more = data.count("\x00") - 1
        also = f" (and {more} more nearby)" if more else ""
        return UnreadableFileError(
            f"{self._uri} holds NUL bytes (\\x00), first at line {line} (data row "
            f"{line - 1}){column}{also}. CSV text never holds NUL bytes: the "
            "file was corrupted in transfer or by its writer. Deliver it again from the source "
            "(or strip the NUL bytes if they are known padding); the raw file was not changed"
        )

    def _check_end(self) -> None:
        """No final newline and a short or unparsable last line: the file was cut off."""
        tail = self._tail.rstrip("\r")
        if not tail or self._header is None or self._lines == 0:
            return
        try:
            fields = next(csv.reader([tail], strict=True), [])
        except csv.Error:
            fields = []
        quotes_open = tail.count('"') % 2 == 1
        if len(fields) >= len(self._header) and not quotes_open:
            return
        line = self._lines + 1
        raise UnreadableFileError(
            f"{self._uri} looks cut off at line {line}: it does not end with a line break and "
            f"its last line has {len(fields)} of {len(self._header)} fields"
            f"{' and an open quote' if quotes_open else ''} ({tail[:60]!r}). The file is "
            f"truncated (an interrupted upload or export): deliver it again, whole; the raw "
            "file was not changed"
        )


def read_frame(uri: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a .parquet or .csv file, compressed or not (`frame_format`); CSV values are
    inferred, typing is the caller's job."""
    suffix, compression = frame_format(uri)
    if compression is not None:
        data = read_bytes(uri)
        if not data:
            raise UnreadableFileError(
                f"{uri} is empty (0 bytes): the writer failed. Deliver a corrected file for the "
                "day; the raw file was not changed"
            )
        data = _decompress(uri, data, compression)
        if not data:
            raise UnreadableFileError(
                f"{uri} holds an empty file once decompressed. Deliver a corrected file for the "
                "day; the raw file was not changed"
            )
        if suffix == ".parquet":
            return _read_parquet(uri, pa.BufferReader(data), columns)
        return _read_csv(uri, data, columns)
    if suffix == ".parquet" and not is_s3(uri):
        # Local parquet is read from the file itself, never first copied into one bytes object.
        try:
            size = os.path.getsize(uri)
        except FileNotFoundError as err:
            raise NotFoundError(f"{uri} does not exist") from err
        except OSError as err:
            raise StorageError(f"cannot read {uri}: {err}") from err
        if size == 0:
            raise UnreadableFileError(f"{uri} is empty (0 bytes): {_REDELIVER}")
        return _read_parquet(uri, uri, columns)
    data = read_bytes(uri)
    if not data:
        raise UnreadableFileError(f"{uri} is empty (0 bytes): {_REDELIVER}")
    if suffix == ".parquet":
        return _read_parquet(uri, pa.BufferReader(data), columns)
    return _read_csv(uri, data, columns)


def _parquet_table(df: pd.DataFrame, uri: str, metadata: dict[str, str] | None = None) -> pa.Table:
    try:
        table = pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowException, ValueError, TypeError) as err:
        raise StorageError(
            f"cannot write {uri} as parquet: {err}; make each column a single type"
        ) from err
    if metadata:
        extra = {k.encode(): v.encode() for k, v in metadata.items()}
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})
    return table


def write_frame(df: pd.DataFrame, uri: str, metadata: dict[str, str] | None = None) -> str:
    """Write a frame as .parquet (pyarrow, no index) or .csv by suffix, atomically.

    `metadata` goes into a parquet file's footer (read back with `parquet_key_value`)."""
    suffix = _frame_suffix(uri)
    if metadata and suffix != ".parquet":
        raise ValueError(f"{uri}: footer metadata needs a .parquet file")
    if is_s3(uri):
        buffer = io.BytesIO()
        if suffix == ".parquet":
            pq.write_table(_parquet_table(df, uri, metadata), buffer)
        else:
            df.to_csv(buffer, index=False, encoding="utf-8")
        size = buffer.tell()
        buffer.seek(0)
        _s3_put(uri, buffer, size)
        return uri
    try:
        with _atomic_local(uri) as tmp:
            if suffix == ".parquet":
                pq.write_table(_parquet_table(df, uri, metadata), tmp)
            else:
                df.to_csv(tmp, index=False, encoding="utf-8")
    except StorageError:
        raise
    except OSError as err:
        raise StorageError(f"cannot write {uri}: {err}; check free space and permissions") from err
    return uri


def _parquet_source(uri: str, buffer_size: int) -> str | BinaryIO:
    """A local path, or a buffered ranged reader for S3: parquet reads only what it needs."""
    if is_s3(uri):
        return io.BufferedReader(_S3RangeReader(uri), buffer_size=buffer_size)
    if not os.path.isfile(uri):
        raise NotFoundError(f"{uri} does not exist")
    return uri


def iter_parquet_batches(
    uri: str, batch_rows: int, row_groups: list[int] | None = None
) -> Iterator[pd.DataFrame]:
    """Stream a parquet file in frames of at most `batch_rows` rows (index continues across).

    S3 objects are read with ranged GETs, so memory stays at one batch whatever the file size.
    `row_groups` restricts the read to those row groups (one partition of a large file).
    Bad arguments and a missing or unreadable file fail here, before the first batch.
    """
    tables = iter_parquet_tables(uri, batch_rows, row_groups)

    def frames() -> Iterator[pd.DataFrame]:
        offset = 0
        for table in tables:
            yield table_to_frame(table, offset)
            offset += table.num_rows

    return frames()


def iter_parquet_tables(
    uri: str, batch_rows: int, row_groups: list[int] | None = None
) -> Iterator[pa.Table]:
    """`iter_parquet_batches` as arrow tables: a consumer that needs only some columns in
    pandas (a scorer feeding a model) converts only those."""
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
    suffix, compression = frame_format(uri)
    if suffix != ".parquet":
        raise StorageError(f"{uri} is not a .parquet file; batches need parquet")
    source: str | BinaryIO
    if compression is not None:  # parquet needs random access: decompressed to a file
        source = _spooled(uri, compression)
    else:
        source = _parquet_source(uri, buffer_size=8 << 20)
    try:
        parquet = _open_parquet(uri, source)
    except BaseException:
        if not isinstance(source, str):
            source.close()
        raise
    if row_groups is not None:
        bad = [g for g in row_groups if not 0 <= g < parquet.num_row_groups]
        if bad:
            parquet.close()
            if not isinstance(source, str):
                source.close()
            raise StorageError(
                f"{uri} has {parquet.num_row_groups} row groups; row groups {bad} do not exist "
                "(the file changed since the partitions were planned: plan them again)"
            )
    return _tables(uri, parquet, source, batch_rows, row_groups)


def table_to_frame(table: pa.Table, offset: int = 0) -> pd.DataFrame:
    """A batch as pandas, its index counting rows from the start of the file."""
    out = table.to_pandas()
    out.index = pd.RangeIndex(offset, offset + len(out))
    return out


def _tables(
    uri: str,
    parquet: pq.ParquetFile,
    source: str | BinaryIO,
    batch_rows: int,
    row_groups: list[int] | None = None,
) -> Iterator[pa.Table]:
    # Row group by row group: ParquetFile.iter_batches keeps arrow memory alive across batches,
    # so memory would grow with the file. A batch never straddles a large row group (a slice
    # would keep two groups' buffers alive); row groups smaller than a batch are merged. So
    # memory stays at one row group plus one batch, whatever the file size.
    pool = pa.default_memory_pool()
    try:
        pending: list[pa.Table] = []
        pending_rows = 0
        groups = range(parquet.num_row_groups) if row_groups is None else row_groups
        for group in groups:
            table = parquet.read_row_group(group, use_pandas_metadata=True)
            if pending_rows + table.num_rows <= batch_rows:
                pending.append(table)
                pending_rows += table.num_rows
                continue
            if pending_rows:
                yield pa.concat_tables(pending)
                pending, pending_rows = [], 0
            for start in range(0, table.num_rows, batch_rows):
                yield table.slice(start, batch_rows)  # the last one may be smaller
            del table
            pool.release_unused()
        if pending_rows:
            yield pa.concat_tables(pending)
    except (pa.ArrowException, OSError) as err:
        if isinstance(err, StorageError):
            raise
        raise _not_parquet(uri, err) from err
    finally:
        parquet.close()
        if not isinstance(source, str):
            source.close()


# ---------------------------------------------------------------- streaming (scoring at scale)


def iter_csv_batches(uri: str, batch_rows: int) -> Iterator[pd.DataFrame]:
    """Stream a CSV file in frames of at most `batch_rows` rows, read as `read_frame` reads CSV.

    Only empty fields are missing (a category "NA" stays a string); S3 objects are streamed
    from the GET body, never held whole. The index continues across batches.
    """
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
    suffix, compression = frame_format(uri)
    if suffix != ".csv":
        raise StorageError(f"{uri} is not a .csv file")
    raw = _open_raw(uri)
    if compression is not None:  # decompressed as it is read, never whole in memory
        raw = _Decompressing(uri, raw, compression)  # type: ignore[assignment]
    binary: Any = io.BufferedReader(raw, buffer_size=1 << 16)  # type: ignore[arg-type]
    try:
        head = binary.peek(4096)[:4096]
    except BaseException:
        binary.close()
        raise
    fault = _not_text(uri, head)
    if fault is not None or not head:
        binary.close()
        empty = "once decompressed" if compression else "(0 bytes)"
        raise fault or UnreadableFileError(f"{uri} is empty {empty}: {_REDELIVER}")
    handle = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    return _csv_batches(uri, handle, batch_rows)


def _csv_batches(uri: str, handle: Any, batch_rows: int) -> Iterator[pd.DataFrame]:
    try:
        reader = pd.read_csv(
            _CheckedCsv(uri, handle), chunksize=batch_rows, keep_default_na=False, na_values=[""]
        )
        yield from reader
    except UnicodeDecodeError as err:
        raise UnreadableFileError(
            f"{uri} is not UTF-8 text ({err.reason} at byte {err.start} of a block); re-save "
            "the CSV as UTF-8, e.g. iconv -f latin1 -t utf-8"
        ) from err
    except pd.errors.EmptyDataError as err:
        raise UnreadableFileError(f"{uri} is empty (no header row): {_REDELIVER}") from err
    except pd.errors.ParserError as err:
        raise _malformed(uri, err) from err
    finally:
        handle.close()


def parquet_row_groups(uri: str) -> list[int]:
    """Rows per row group of a parquet file (read from its footer only)."""
    source = _parquet_source(uri, buffer_size=1 << 20)
    try:
        parquet = _open_parquet(uri, source)
        meta = parquet.metadata
        return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    finally:
        if not isinstance(source, str):
            source.close()


def parquet_key_value(uri: str, key: str) -> str | None:
    """One key of a parquet file's footer metadata, or None (also for a missing/corrupt file).

    Why: a re-run decides from a finished output's footer whether it may be kept as it is.
    """
    try:
        source: str | BinaryIO = (
            io.BufferedReader(_S3RangeReader(uri), buffer_size=1 << 20) if is_s3(uri) else uri
        )
        try:
            meta = pq.read_metadata(source).metadata or {}
        finally:
            if not isinstance(source, str):
                source.close()
    except (OSError, pa.ArrowException):
        return None
    value = meta.get(key.encode())
    return None if value is None else value.decode()


def delete(uri: str) -> bool:
    """Remove a file or object; True if something was removed (a missing one is fine)."""
    if is_s3(uri):
        if not exists(uri):
            return False
        bucket, key = _split_s3(uri)
        _s3_call(uri, lambda: _s3().delete_object(Bucket=bucket, Key=key))
        return True
    try:
        os.unlink(uri)
    except FileNotFoundError:
        return False
    except OSError as err:
        raise StorageError(f"cannot delete {uri}: {err}; check permissions") from err
    return True


def list_temp_files(folder: str) -> list[str]:
    """Temp files a crashed local write left in a folder (S3 writes leave none behind)."""
    if is_s3(folder) or not os.path.isdir(folder):
        return []
    return sorted(
        os.path.join(folder, name)
        for name in os.listdir(folder)
        if name.startswith(".") and name.endswith(".tmp")
    )


@contextlib.contextmanager
def atomic_output(uri: str) -> Iterator[str]:
    """A local path to write a large file to; on success it appears at `uri` all at once.

    Local: a temp file next to the target, renamed over it. S3: a local temp file, uploaded in
    one PUT or one multipart upload when the block exits (an interrupted multipart upload is
    aborted by boto3 and never visible). On error nothing appears at `uri`.
    """
    if not is_s3(uri):
        with _atomic_local(uri) as tmp:
            yield tmp
        return
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix="driftloop-", suffix=_suffix(uri))
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            _s3_put(uri, handle, os.path.getsize(tmp))
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


# ---------------------------------------------------------------- lake layout


def _day(day: datetime.date) -> str:
    return f"{day:%Y-%m-%d}"


class Lake:
    """The one place that knows the lake layout under a local folder or s3:// prefix."""

    def __init__(self, root: str, dataset: str, raw_pattern: str | None = None) -> None:
        if not dataset or "/" in dataset or dataset.startswith("."):
            raise ValueError(f"dataset name {dataset!r} must be a plain name without '/'")
        self.root = root if root in ("/", "s3://") else root.rstrip("/")
        self.dataset = dataset
        self.raw_pattern = raw_pattern  # `dataset.raw_pattern`: files as they come

    def _pattern_uri(self, text: str) -> str:
        """A pattern (or its folder) as a URI: relative to the root unless absolute / s3://."""
        if is_s3(text) or os.path.isabs(text):
            return text
        return join(self.root, text)

    def raw_by_pattern(self, day: datetime.date) -> str:
        """The URI `dataset.raw_pattern` gives the day's raw file."""
        from driftloop.configs.settings import DATE_PLACEHOLDER

        assert self.raw_pattern is not None
        text = DATE_PLACEHOLDER.sub(
            lambda m: day.strftime(m.group(1) or "%Y-%m-%d"), self.raw_pattern
        )
        return self._pattern_uri(text)

    def raw_day_of(self, uri: str) -> datetime.date | None:
        """The day a raw file under `raw_folder` holds by `raw_pattern`; None when it does not
        match (or the pattern is unset: `day_states.raw_day` reads the default names)."""
        if self.raw_pattern is None:
            return None
        from driftloop.configs.settings import DATE_DIRECTIVES, DATE_PLACEHOLDER

        def group(match: Any) -> str:
            fmt = match.group(1) or "%Y-%m-%d"
            parts = re.split(r"(%.)", fmt)
            return "(" + "".join(
                DATE_DIRECTIVES[p[1]] if p.startswith("%") and len(p) == 2 else re.escape(p)
                for p in parts
            ) + ")"  # fmt: skip

        full = self._pattern_uri(self.raw_pattern)  # placeholders survive the join
        pieces, formats, last = [], [], 0
        for match in DATE_PLACEHOLDER.finditer(full):
            pieces += [re.escape(full[last : match.start()]), group(match)]
            formats.append(match.group(1) or "%Y-%m-%d")
            last = match.end()
        pieces.append(re.escape(full[last:]))
        found = re.fullmatch("".join(pieces), uri)
        if found is None:
            return None
        for text, fmt in zip(found.groups(), formats, strict=True):
            try:
                day = datetime.datetime.strptime(text, fmt).date()
            except ValueError:
                continue
            if self.raw_by_pattern(day) == uri:  # every placeholder agrees on the day
                return day
        return None

    def __repr__(self) -> str:
        return f"Lake(root={self.root!r}, dataset={self.dataset!r})"

    def raw(self, day: datetime.date, fmt: str = "parquet") -> str:
        if fmt not in ("parquet", "csv"):
            raise ValueError(f"unknown raw format {fmt!r}; use 'parquet' or 'csv'")
        return join(self.root, "raw", self.dataset, f"{_day(day)}.{fmt}")

    def raw_any(self, day: datetime.date) -> str:
        """The raw file stored for the day: by `raw_pattern` when set, else the parquet file
        if present, else the csv one."""
        if self.raw_pattern is not None:
            uri = self.raw_by_pattern(day)
            if not exists(uri):
                raise NotFoundError(
                    f"no raw {self.dataset} file for {_day(day)}: dataset.raw_pattern "
                    f"{self.raw_pattern!r} gives {uri}, which does not exist; deliver that "
                    "file (or fix the pattern, or pass --source)"
                )
            return uri
        candidates = [self.raw(day, "parquet"), self.raw(day, "csv")]
        for uri in candidates:
            if exists(uri):
                return uri
        raise NotFoundError(
            f"no raw {self.dataset} data for {_day(day)}: neither {candidates[0]} nor "
            f"{candidates[1]} exists; generate or upload that day first"
        )

    def raw_folder(self) -> str:
        """Where raw files land: raw/<dataset>, or the folder of `raw_pattern` before its
        first placeholder."""
        if self.raw_pattern is not None:
            static = self.raw_pattern.split("{", 1)[0]
            folder = static.rsplit("/", 1)[0] if "/" in static else ""
            return self._pattern_uri(folder) if folder else self.root
        return join(self.root, "raw", self.dataset)

    def curated(self, day: datetime.date) -> str:
        return join(self.root, "curated", self.dataset, f"{_day(day)}.parquet")

    def curated_folder(self) -> str:
        return join(self.root, "curated", self.dataset)

    def day_states(self) -> str:
        """What the unattended loop did with each day: one JSON file per day."""
        return join(self.root, "state", self.dataset, "days")

    def quarantine(self, day: datetime.date, run_id: str) -> str:
        return join(self.root, "quarantine", self.dataset, _day(day), f"{run_id}.parquet")

    def predictions(self, model: str, day: datetime.date) -> str:
        return join(self.root, "predictions", model, f"{_day(day)}.parquet")

    def prediction_parts(self, model: str, day: datetime.date) -> str:
        """The folder of a partitioned scoring run: one part-NNNNN.parquet per input partition."""
        return join(self.root, "predictions", model, _day(day))

    def quarantine_parts(self, day: datetime.date, run_id: str) -> str:
        """The folder of a partitioned run's quarantine: one file per partition with bad rows."""
        return join(self.root, "quarantine", self.dataset, _day(day), run_id)

    def reference(self, model: str, version: str | int) -> str:
        return join(self.root, "references", model, f"v{version}.parquet")

    def report(self, kind: str, name: str) -> str:
        return join(self.root, "reports", kind, name)

    def data_docs(self, day: datetime.date, run_id: str) -> str:
        """One Great Expectations Data Docs site per validation run (open its index.html)."""
        return join(self.root, "reports", "data-docs", self.dataset, _day(day), run_id)

    # --- monitoring ---------------------------------------------------------------------

    def labels(self, day: datetime.date) -> str:
        """Delayed labels (id + target) for the rows that arrived on `day`."""
        return join(self.root, "labels", self.dataset, f"{_day(day)}.parquet")

    def reference_stats(self, model: str, version: str | int) -> str:
        """Precomputed statistics of a version's reference, stored next to its snapshot."""
        return join(self.root, "references", model, f"v{version}.stats.json")

    def drift_history(self, model: str) -> str:
        """One parquet file per drift check under this prefix (append-safe on S3 too)."""
        return join(self.root, "monitoring", model, "history")

    def quarantine_day(self, day: datetime.date) -> str:
        return join(self.root, "quarantine", self.dataset, _day(day))
