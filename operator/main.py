"""The operator process: wiring only.

    python -m ouroboros.operator
    OURO_NAMESPACES=a,b OURO_METRICS_PORT=8080 python -m ouroboros.operator
    OURO_METRICS_ADDRESS=127.0.0.1 OURO_HEALTH_ADDRESS=:: python -m ouroboros.operator

Reads `OperatorSettings` from the environment, builds the API client, the
metrics registry and the handler context, registers the handlers on a kopf
registry of its own, starts the metrics endpoint and a periodic resync, and
runs kopf standalone. With OURO_LEADER_ELECTION=true (the chart's default)
it first waits to hold a Lease (operator/leader.py), so of several replicas
only one reconciles; without it, run one replica (the Recreate strategy).

Nothing is registered at import time (no `kopf run -m`): handlers go on the
registry `main()` creates, so tests can build operators of their own.
"""

from __future__ import annotations

import http.server
import logging
import os
import socket
import sys
import threading
from typing import Any

import kopf

from ouroboros.operator import clock, handlers, leader
from ouroboros.operator.context import Context
from ouroboros.operator.handlers import champion, trainingrun, trainingschedule
from ouroboros.operator.kube import KubeClient
from ouroboros.operator.metrics import Metrics
from ouroboros.operator.settings import OperatorSettings, http_url

log = logging.getLogger("ouroboros.operator")


def build(settings: OperatorSettings, registry: kopf.OperatorRegistry) -> Context:
    """The handler context, with handlers and start-up settings registered on `registry`."""
    ctx = Context(settings=settings, kube=KubeClient.from_environment(pool_size=settings.workers * 2), metrics=Metrics(),
                  clock=clock.clock(settings.clock_file))
    handlers.register(registry, ctx)
    ctx.metrics.register_controller(trainingrun.CONTROLLER, settings.workers)

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
        for controller in (trainingrun, trainingschedule, champion):  # schedules: the clock and the triggers' data
            try:
                controller.resync(ctx)
            except Exception:  # noqa: BLE001 - keep resyncing whatever one pass hit
                log.exception("resync of %s failed", controller.CONTROLLER)


def main(argv: list[str] | None = None) -> int:
    """Run the operator until interrupted; returns the exit code."""
    del argv  # configuration comes from the environment (see settings.py)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)  # one line per watch event is noise
    settings = OperatorSettings.from_env()
    registry = kopf.OperatorRegistry()
    ctx = build(settings, registry)
    if settings.metrics_port:
        ctx.metrics.serve(settings.metrics_port, settings.metrics_address)
    stop = threading.Event()
    elector = _elect(settings, ctx, stop)
    threading.Thread(target=_resync_forever, args=(ctx, stop), name="resync", daemon=True).start()
    log.info("watching %s; trainer command %s", ",".join(settings.namespaces) or "all namespaces",
             " ".join(settings.jobs.trainer_command))
    try:
        kopf.run(
            registry=registry,
            standalone=True,
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
            liveness_endpoint=http_url(settings.health_address, settings.health_port, "/healthz")
            if settings.health_port
            else None,
        )
    finally:
        stop.set()
        if elector is not None:
            elector.release()
    return 0


class _StandbyHealth(http.server.BaseHTTPRequestHandler):
    """200 on /healthz while this replica waits for the Lease (a standby is alive)."""

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        ok = self.path == "/healthz"
        body = b"standby\n" if ok else b"not found\n"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the http.server API
        del format, args  # probes every few seconds would flood the log


def _standby_health(settings: OperatorSettings) -> http.server.ThreadingHTTPServer | None:
    """Answer the liveness probe until kopf's own endpoint takes the port over."""
    if not settings.health_port:
        return None
    family = socket.AF_INET6 if ":" in settings.health_address else socket.AF_INET
    server_class = type("StandbyServer", (http.server.ThreadingHTTPServer,), {"address_family": family})
    server = server_class((settings.health_address, settings.health_port), _StandbyHealth)
    threading.Thread(target=server.serve_forever, name="standby-health", daemon=True).start()
    return server


def _elect(settings: OperatorSettings, ctx: Context, stop: threading.Event) -> leader.LeaderElector | None:
    """With leader election on, block until this replica leads and keep renewing in a thread.

    Losing the Lease ends the process at once (exit code 1): reconciling a
    moment longer could overlap the new leader, and kubelet restarts the pod
    as a standby.
    """
    election = settings.leader_election
    if not election.enabled:
        return None
    elector = leader.LeaderElector(ctx.kube, leader.ElectionConfig(
        namespace=election.lease_namespace, name=election.lease_name, identity=election.identity,
        lease_duration_s=election.lease_duration_s, renew_deadline_s=election.renew_deadline_s,
        retry_period_s=election.retry_period_s,
    ))
    standby = _standby_health(settings)  # kopf's /healthz only starts with kopf, after the election
    try:
        elector.acquire(stop)
    finally:
        if standby is not None:
            standby.shutdown()
            standby.server_close()

    def lost() -> None:
        log.critical("lost the leader Lease; exiting so that only the new leader reconciles")
        logging.shutdown()
        os._exit(1)

    threading.Thread(target=elector.keep, args=(stop, lost), name="leader-election", daemon=True).start()
    return elector


if __name__ == "__main__":
    sys.exit(main())
