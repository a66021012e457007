"""The operator process: wiring only.

    python -m ouroboros.operator
    OURO_NAMESPACES=a,b OURO_METRICS_PORT=8080 python -m ouroboros.operator

Reads `OperatorSettings` from the environment, builds the API client, the
metrics registry and the handler context, registers the handlers on a kopf
registry of its own, starts the metrics endpoint and a periodic resync, and
runs kopf standalone (one replica: the Deployment uses the Recreate strategy,
so two operators never overlap).

Nothing is registered at import time (no `kopf run -m`): handlers go on the
registry `main()` creates, so tests can build operators of their own.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

import kopf

from ouroboros.operator import handlers
from ouroboros.operator.context import Context
from ouroboros.operator.handlers import champion, trainingrun
from ouroboros.operator.kube import KubeClient
from ouroboros.operator.metrics import Metrics
from ouroboros.operator.settings import OperatorSettings

log = logging.getLogger("ouroboros.operator")


def build(settings: OperatorSettings, registry: kopf.OperatorRegistry) -> Context:
    """The handler context, with handlers and start-up settings registered on `registry`."""
    ctx = Context(settings=settings, kube=KubeClient.from_environment(pool_size=settings.workers * 2), metrics=Metrics())
    handlers.register(registry, ctx)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_via_client(**kwargs)  # in-cluster service account, else $KUBECONFIG

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.peering.standalone = True
        settings.execution.max_workers = ctx.settings.workers
        settings.batching.batch_window = 0.05  # merge bursts of events, but react fast
        settings.watching.server_timeout = 300
        settings.posting.level = logging.WARNING

    @kopf.on.cleanup(registry=registry)
    def cleanup(**_: Any) -> None:
        ctx.timers.cancel_all()

    return ctx


def _resync_forever(ctx: Context, stop: threading.Event) -> None:
    while not stop.wait(ctx.settings.resync_seconds):
        try:
            trainingrun.resync(ctx)
            champion.resync(ctx)
        except Exception:  # noqa: BLE001 - keep resyncing whatever one pass hit
            log.exception("resync failed")


def main(argv: list[str] | None = None) -> int:
    """Run the operator until interrupted; returns the exit code."""
    del argv  # configuration comes from the environment (see settings.py)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)  # one line per watch event is noise
    settings = OperatorSettings.from_env()
    registry = kopf.OperatorRegistry()
    ctx = build(settings, registry)
    if settings.metrics_port:
        ctx.metrics.serve(settings.metrics_port)
    stop = threading.Event()
    threading.Thread(target=_resync_forever, args=(ctx, stop), name="resync", daemon=True).start()
    log.info("watching %s; trainer command %s", ",".join(settings.namespaces) or "all namespaces",
             " ".join(settings.jobs.trainer_command))
    try:
        kopf.run(
            registry=registry,
            standalone=True,
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
            liveness_endpoint=f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None,
        )
    finally:
        stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
