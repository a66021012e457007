"""kopf handlers: thin shells that read, let pure code decide, and write.

`register(registry, ctx)` attaches every handler of the operator to a kopf
registry; `main` owns the registry and the context.
"""

from __future__ import annotations

import kopf

from ouroboros.operator.context import Context
from ouroboros.operator.handlers import champion, trainingrun, trainingschedule


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    """Attach all handlers: TrainingRun, TrainingSchedule and Champion."""
    trainingrun.register(registry, ctx)
    trainingschedule.register(registry, ctx)
    champion.register(registry, ctx)
