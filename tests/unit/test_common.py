"""Retries are for network blips only: a bad file or a missing alias fails at once."""

from __future__ import annotations

import pytest
from botocore.exceptions import EndpointConnectionError

from driftloop.tasks.adapters.registry import RegistryError
from driftloop.tasks.adapters.storage import NotFoundError, StorageError
from driftloop.tasks.common import artifact_key, days_in, is_transient


def _chained(outer: Exception, inner: Exception) -> Exception:
    try:
        try:
            raise inner
        except Exception as err:
            raise outer from err
    except Exception as final:
        return final


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ConnectionRefusedError("refused"), True),
        (TimeoutError("slow"), True),
        (
            _chained(
                StorageError("S3 request failed"),
                EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
            ),
            True,
        ),
        (NotFoundError("s3://b/k does not exist"), False),
        (StorageError("x.parquet is not a parquet file"), False),
        (RegistryError("no champion alias yet"), False),
        (ValueError("bad value"), False),
        (None, False),
    ],
)
def test_only_network_errors_are_retried(error: Exception | None, transient: bool) -> None:
    assert is_transient(error) is transient


def test_artifact_keys_are_what_prefect_accepts() -> None:
    assert artifact_key("Drift", "loan_default.v2") == "drift-loan-default-v2"


def test_days_in_window() -> None:
    from datetime import date

    assert len(days_in(date(2026, 11, 1), date(2026, 11, 3))) == 3
    with pytest.raises(ValueError, match="before its start"):
        days_in(date(2026, 11, 3), date(2026, 11, 1))
