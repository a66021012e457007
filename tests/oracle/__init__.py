"""The official rules engine as a test oracle.

`ensure_oracle()` builds the Go binary `bsoracle` (cached by a hash of its
sources) and `run_oracle()` talks to it in batch. The session fixture `oracle`
in tests/conftest.py wraps `ensure_oracle()`; README.md documents the wire
formats.
"""

from .build import OracleUnavailable, ensure_oracle, oracle_sources_hash
from .client import OracleError, run_oracle

__all__ = [
    "OracleError",
    "OracleUnavailable",
    "ensure_oracle",
    "oracle_sources_hash",
    "run_oracle",
]
