"""metav1.Condition bookkeeping, as the Kubernetes API conventions describe it.

Every condition a kind declares is present from the first reconcile (Unknown
if need be), always has a reason, carries the generation it was computed
from, and changes `lastTransitionTime` only when its status flips, so
`kubectl wait --for=condition=X` and alerting on transition times both work.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from ouroboros.operator.resources import Condition, ConditionStatus

MESSAGE_LIMIT = 32768


@dataclasses.dataclass(frozen=True)
class Desired:
    """What a condition should say now."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""


def merge(
    current: list[Condition], desired: list[Desired], generation: int, now: datetime
) -> list[Condition]:
    """The new conditions list: `desired` applied over `current`, transition times kept when status holds.

    Conditions of types not in `desired` are kept as they are (another
    controller, or a newer operator, may own them).
    """
    by_type = {c.type: c for c in current}
    out: list[Condition] = []
    for want in desired:
        old = by_type.pop(want.type, None)
        changed = old is None or old.status != want.status
        out.append(
            Condition(
                type=want.type,
                status=want.status,
                reason=want.reason,
                message=want.message[:MESSAGE_LIMIT],
                last_transition_time=now if changed else old.last_transition_time,
                observed_generation=generation,
            )
        )
    out.extend(by_type.values())
    return out


def get(conditions: list[Condition], type_: str) -> Condition | None:
    """The condition of that type, if present."""
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: list[Condition], type_: str) -> bool:
    """Whether the condition of that type is present and True."""
    cond = get(conditions, type_)
    return cond is not None and cond.status == ConditionStatus.TRUE
