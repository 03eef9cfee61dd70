"""Property tests must be reproducible: the same examples on every run, in CI and locally."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

_drawn: list[list[int]] = []


def test_the_default_profile_is_derandomized() -> None:
    if os.environ.get("HYPOTHESIS_PROFILE", "driftloop") != "driftloop":
        pytest.skip("HYPOTHESIS_PROFILE chose another profile for this run")
    assert settings.default.derandomize is True
    assert settings.default.database is None, "examples must not depend on a local database"


@pytest.mark.parametrize("attempt", [1, 2])
def test_two_runs_draw_the_same_examples(attempt: int) -> None:
    """Run the same property twice in one session: a fixed seed draws the same sequence."""
    if os.environ.get("HYPOTHESIS_PROFILE", "driftloop") != "driftloop":
        pytest.skip("HYPOTHESIS_PROFILE chose another profile for this run")
    seen: list[int] = []

    @settings(max_examples=20)
    @given(st.integers())
    def prop(value: int) -> None:
        seen.append(value)

    prop()
    _drawn.append(seen)
    if attempt == 2:
        assert _drawn[0] == _drawn[1]
