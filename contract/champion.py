"""What a Champion's registry Jobs are asked to do and what they report back.

The model registry in the artifact store (``champions/<game>.json``) is the
source of truth for which version plays a game; the operator image never
imports the trainer and often cannot reach the store, so every registry write
(an approved promotion, a pin or unpin, a post-promotion check and its
automatic rollback) and every read runs as a short trainer Job, ``ouro
champion job OPERATION ...``, which writes a :class:`RegistryReport` of the
pointer *after* its work to its termination log. The Champion controller
mirrors that report into ``Champion.status``. A report is a few KiB at most
(:data:`ouroboros.contract.run.RESULT_MAX_BYTES`), so it carries the newest
history records only; the status keeps the union of what it has seen.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from ouroboros.contract.schema import StatusModel

REPORT_HISTORY = 8
"""History records a report carries at most (newest first)."""
REASON_CHARS = 200
"""Characters of a record's reason a report keeps."""


class ChampionOperation(StrEnum):
    """What a registry Job does before it reports the pointer."""

    SYNC = "sync"
    """Only read the pointer."""
    PROMOTE = "promote"
    """Put an approved candidate in force (through ``evaluation.promotion``)."""
    PIN = "pin"
    """Install a version from the history and freeze the pointer there (``spec.pinnedVersion``)."""
    UNPIN = "unpin"
    """Lift the pin; promotions take effect again."""
    CHECK = "check"
    """Post-promotion check: smoke games of the champion against the previous one; roll back under the threshold."""


class RegistryRecord(StatusModel):
    """One change of the pointer, compacted (``artifacts.registry.ChampionRecord``)."""

    action: str = Field(description="promote, rollback, pin or unpin.")
    version: str | None = Field(default=None, description="Version in force after the change.")
    previous: str | None = Field(default=None, description="Version in force before.")
    at: datetime = Field(description="When.")
    by: str = Field(default="", description="Who.")
    run: str | None = Field(default=None, description="Run the version came from.")
    sha256: str | None = Field(default=None, description="sha256 of the version in force after the change.")
    reason: str = Field(default="", description="Why (first characters).")
    verdict: str | None = Field(default=None, description="The gate's verdict (promote, manual ...).")
    win_rate: float | None = Field(default=None, description="Gate score of the version against the one it replaced.")
    win_rate_lower: float | None = Field(default=None, description="Wilson 95% lower bound of that score.")
    win_rate_upper: float | None = Field(default=None, description="Wilson 95% upper bound of that score.")
    elo: float | None = Field(default=None, description="Elo difference against the one it replaced.")
    elo_lower: float | None = Field(default=None, description="Lower end of its 95% interval.")
    elo_upper: float | None = Field(default=None, description="Upper end of its 95% interval.")


class CheckResult(StatusModel):
    """What a post-promotion check measured and did."""

    version: str = Field(description="The champion that was checked.")
    against: str | None = Field(default=None, description="The previous champion it played.")
    games: int = Field(default=0, ge=0, description="Games played.")
    win_rate: float | None = Field(default=None, ge=0, le=1, description="Score per game.")
    passed: bool = Field(description="Score at or over the threshold (or nothing to play against).")
    rolled_back: bool = Field(default=False, description="The registry was rolled back to ``against``.")
    player: str | None = Field(
        default=None, description="How both versions played, as the Champion's gate plays them: ``policy`` or "
        "``nsearch:ms=N[,visits=N]`` (``PromotionSpec.served_player``; unset: nothing was played).")
    message: str = Field(default="", description="One line for humans.")


class RegistryReport(StatusModel):
    """The champion pointer of one game after a registry Job's operation."""

    operation: ChampionOperation = Field(description="What the Job did.")
    game: str = Field(description="Game key, e.g. standard-11x11-2p.")
    version: str | None = Field(default=None, description="Version in force (unset: no champion yet).")
    sha256: str | None = Field(default=None, description="Its sha256.")
    size: int | None = Field(default=None, ge=0, description="Its size in bytes.")
    uri: str | None = Field(default=None, description="Its URI.")
    pinned_version: str | None = Field(default=None, description="Pin, if any.")
    generation: int = Field(default=0, ge=0, description="The pointer's generation (one more per change).")
    history: list[RegistryRecord] = Field(default_factory=list, max_length=REPORT_HISTORY,
                                          description="Newest changes first.")
    check: CheckResult | None = Field(default=None, description="The post-promotion check (operation check).")
    message: str = Field(default="", description="One line for humans.")
