"""Shared fixtures: the official rules engine as a built oracle binary, and the official CLI."""

from pathlib import Path

import pytest
from battlesnake_cli.build import CliUnavailable, ensure_cli
from oracle.build import OracleUnavailable, ensure_oracle


@pytest.fixture(scope="session")
def oracle() -> Path:
    """Path of the `bsoracle` binary (tests/oracle); skips when Go is missing."""
    try:
        return ensure_oracle()
    except OracleUnavailable as exc:
        pytest.skip(f"oracle unavailable: {exc}")


@pytest.fixture(scope="session")
def battlesnake_cli() -> Path:
    """Path of the official `battlesnake` CLI v1.2.3 (tests/battlesnake_cli); skips when
    it cannot be built here."""
    try:
        return ensure_cli()
    except CliUnavailable as exc:
        pytest.skip(f"battlesnake CLI unavailable: {exc}")
