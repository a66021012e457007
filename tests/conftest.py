"""Shared fixtures: the official rules engine as a built oracle binary."""

from pathlib import Path

import pytest
from oracle.build import OracleUnavailable, ensure_oracle


@pytest.fixture(scope="session")
def oracle() -> Path:
    """Path of the `bsoracle` binary (tests/oracle); skips when Go is missing."""
    try:
        return ensure_oracle()
    except OracleUnavailable as exc:
        pytest.skip(f"oracle unavailable: {exc}")
