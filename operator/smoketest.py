"""`helm test`: prove an installation works by running a tiny CPU TrainingRun to success.

    python -m ouroboros.operator.smoketest --namespace ouroboros-system --timeout 900

Creates a TrainingRun named `helm-test-<random>` with every phase on a tiny
budget, waits until it is Succeeded (exit 0) or Failed or past the timeout
(exit 1, with the run's conditions and last message printed), and deletes it
either way. It runs in the operator image as the chart's test ServiceAccount,
which may only create, get and delete TrainingRuns in the release namespace.
Pure parts (`tiny_run`, `verdict`) are separate from the polling shell.
"""

from __future__ import annotations

import argparse
import enum
import sys
import time
import uuid
from typing import Any

from ouroboros.operator.resources import API_VERSION, GROUP, VERSION

PLURAL = "trainingruns"


class Verdict(str, enum.Enum):
    """Where a watched run stands."""

    PENDING = "Pending"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


TINY = {"distill": {"teacherMoveMs": 5, "studentVisits": 8}}
"""Phases' own knobs on the tiny budget (distill's search teacher and student)."""


def tiny_run(name: str) -> dict[str, Any]:
    """The manifest of a TrainingRun with every phase, a 7x7 duel and a tiny CPU budget."""
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingRun",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/component": "test"}},
        "spec": {
            "champion": "helm-test",
            "game": {"ruleset": "standard", "width": 7, "height": 7, "snakes": 2},
            "model": {"architecture": "cnn_simple", "blocks": 1, "channels": 8},
            "phases": [{"name": p, "games": 2, **TINY.get(p, {})}
                       for p in ("bootstrap", "hybrid", "self_play", "distill", "continuous", "evaluate")],
            "resources": {"cpu": "500m", "memory": "1Gi"},
            "backoffLimit": 0,
            "activeDeadlineSeconds": 600,
        },
    }


def verdict(run: dict[str, Any] | None) -> Verdict:
    """Succeeded or Failed from the run's conditions; Pending until one of them is True."""
    conditions = ((run or {}).get("status") or {}).get("conditions") or []
    for condition in conditions:
        if condition.get("status") == "True" and condition.get("type") in (Verdict.SUCCEEDED, Verdict.FAILED):
            return Verdict(condition["type"])
    return Verdict.PENDING


def describe(run: dict[str, Any] | None) -> str:
    """One line per condition and phase, for the test's log."""
    status = (run or {}).get("status") or {}
    lines = [f"  {c.get('type')}={c.get('status')} {c.get('reason', '')}: {c.get('message', '')}"
             for c in status.get("conditions") or []]
    lines += [f"  phase {p.get('name')}: {p.get('state')} {p.get('message', '')}" for p in status.get("phases") or []]
    return "\n".join(lines) or "  (no status yet: is the operator running?)"


def main(argv: list[str] | None = None) -> int:
    """Run the smoke test; 0 when the run succeeded, 1 otherwise, 2 on bad arguments."""
    parser = argparse.ArgumentParser(prog="python -m ouroboros.operator.smoketest", description=__doc__.split("\n")[0])
    parser.add_argument("--namespace", required=True, help="namespace to create the run in")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for success")
    parser.add_argument("--poll", type=float, default=2.0, help="seconds between status reads")
    args = parser.parse_args(argv)

    import kubernetes  # here, so that the pure parts import without a client

    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()
    api = kubernetes.client.CustomObjectsApi()
    name = f"helm-test-{uuid.uuid4().hex[:8]}"
    api.create_namespaced_custom_object(GROUP, VERSION, args.namespace, PLURAL, tiny_run(name))
    print(f"created TrainingRun {args.namespace}/{name}; waiting up to {args.timeout:.0f}s", flush=True)
    deadline = time.monotonic() + args.timeout
    run: dict[str, Any] | None = None
    result = Verdict.PENDING
    try:
        while result is Verdict.PENDING and time.monotonic() < deadline:
            time.sleep(args.poll)
            run = api.get_namespaced_custom_object(GROUP, VERSION, args.namespace, PLURAL, name)
            result = verdict(run)
    finally:
        api.delete_namespaced_custom_object(GROUP, VERSION, args.namespace, PLURAL, name)
    print(f"TrainingRun {name}: {result.value if result is not Verdict.PENDING else 'timed out'}\n{describe(run)}")
    return 0 if result is Verdict.SUCCEEDED else 1


if __name__ == "__main__":
    sys.exit(main())
