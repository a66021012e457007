"""Leader election on a Lease, so that two operator replicas never reconcile at once.

kopf has no leader election (its peering pauses operators of lower priority;
equal priorities freeze each other), and the `Recreate` strategy alone does
not cover a node that is cut off while its pod still runs. This is the
algorithm of client-go's `tools/leaderelection` on a `coordination.k8s.io/v1`
Lease, written against the operator's plain-JSON client:

- a replica holds the Lease while `spec.holderIdentity` is its identity and it
  renews `spec.renewTime` every `retry_period_s`;
- another replica takes the Lease over only when the holder is empty or has
  not renewed for `spec.leaseDurationSeconds`, with an optimistic-concurrency
  PUT (resourceVersion), so exactly one of several contenders wins;
- a leader that fails to renew for `renew_deadline_s` stops leading (the
  process exits and kubelet restarts it as a follower), which is shorter than
  the lease duration, so it has stopped before anyone else may start;
- on a clean shutdown the leader empties `holderIdentity`, and a standby
  takes over at once instead of after a lease duration.

`decide` is the pure part; `LeaderElector` is the thin shell that reads and
writes the Lease.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from ouroboros.operator.kube import ApiError, KubeClient

log = logging.getLogger(__name__)
MICRO_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


class Step(str, enum.Enum):
    """What a replica does with the Lease it just read."""

    CREATE = "Create"
    """No Lease yet: create it, holding it."""
    TAKE_OVER = "TakeOver"
    """Empty or expired: replace it with this replica as holder (counts a transition)."""
    RENEW = "Renew"
    """This replica holds it: move renewTime forward."""
    WAIT = "Wait"
    """Another replica holds a live Lease."""


@dataclass(frozen=True)
class LeaseState:
    """What `decide` needs of a Lease."""

    holder: str | None
    renew_time: datetime | None
    duration_s: float


def parse_lease(lease: dict[str, Any] | None) -> LeaseState | None:
    """The LeaseState of a Lease object (None for None)."""
    if lease is None:
        return None
    spec = lease.get("spec") or {}
    renew = spec.get("renewTime") or spec.get("acquireTime")
    renew_time = None
    if renew:
        renew_time = datetime.fromisoformat(renew.replace("Z", "+00:00"))
    return LeaseState(holder=spec.get("holderIdentity") or None, renew_time=renew_time,
                      duration_s=float(spec.get("leaseDurationSeconds") or 0))


def decide(lease: LeaseState | None, identity: str, now: datetime) -> Step:
    """The step for `identity` at `now`, given the Lease as read (None: it does not exist)."""
    if lease is None:
        return Step.CREATE
    if lease.holder == identity:
        return Step.RENEW
    if lease.holder is None or lease.renew_time is None:
        return Step.TAKE_OVER
    if now >= lease.renew_time + timedelta(seconds=lease.duration_s):
        return Step.TAKE_OVER
    return Step.WAIT


@dataclass(frozen=True)
class ElectionConfig:
    """Where the Lease lives and how the election is timed (client-go's defaults)."""

    namespace: str
    """Namespace of the Lease (the operator's own)."""
    name: str = "ouroboros-operator"
    """Name of the Lease."""
    identity: str = ""
    """This replica's identity (its pod name)."""
    lease_duration_s: float = 15.0
    """How long a Lease that is not renewed stays valid for the others."""
    renew_deadline_s: float = 10.0
    """How long the leader keeps trying to renew before it stops leading."""
    retry_period_s: float = 2.0
    """Time between attempts to acquire or renew."""


class LeaderElector:
    """Acquire, keep and release one Lease through a KubeClient."""

    def __init__(self, kube: KubeClient, config: ElectionConfig, clock: Callable[[], datetime] | None = None):
        if not config.identity:
            raise ValueError("leader election needs an identity (OURO_POD_NAME)")
        if not config.renew_deadline_s < config.lease_duration_s:
            raise ValueError("the renew deadline must be shorter than the lease duration")
        self.kube = kube
        self.config = config
        self.clock = clock or (lambda: datetime.now(UTC))
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{quote(config.namespace)}/leases"

    def _get(self) -> dict[str, Any] | None:
        try:
            return self.kube.request("GET", f"{self.path}/{quote(self.config.name)}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def try_once(self) -> bool:
        """One read and, if the step calls for it, one write; True when this replica holds the Lease."""
        lease = self._get()
        now = self.clock()
        step = decide(parse_lease(lease), self.config.identity, now)
        if step is Step.WAIT:
            return False
        stamp = now.strftime(MICRO_TIME)
        spec = {"holderIdentity": self.config.identity, "leaseDurationSeconds": int(self.config.lease_duration_s),
                "renewTime": stamp}
        try:
            if step is Step.CREATE:
                body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": self.config.name, "namespace": self.config.namespace},
                        "spec": {**spec, "acquireTime": stamp, "leaseTransitions": 0}}
                self.kube.request("POST", self.path, body)
            else:
                assert lease is not None
                old = lease.get("spec") or {}
                if step is Step.TAKE_OVER:
                    spec.update(acquireTime=stamp, leaseTransitions=int(old.get("leaseTransitions") or 0) + 1)
                    log.info("taking over Lease %s/%s from %s", self.config.namespace, self.config.name,
                             old.get("holderIdentity") or "nobody")
                body = {**lease, "spec": {**old, **spec}}  # metadata.resourceVersion: optimistic concurrency
                self.kube.request("PUT", f"{self.path}/{quote(self.config.name)}", body)
        except ApiError as exc:
            if exc.status == 409:
                return False  # another replica wrote first (or created it first)
            raise
        return True

    def acquire(self, stop: threading.Event) -> bool:
        """Block until this replica holds the Lease (True) or `stop` is set (False)."""
        waiting_logged = False
        while not stop.is_set():
            try:
                if self.try_once():
                    log.info("leading: holding Lease %s/%s as %s", self.config.namespace, self.config.name,
                             self.config.identity)
                    return True
            except ApiError as exc:
                log.warning("leader election: %s", exc)
            if not waiting_logged:
                log.info("standing by: another replica holds Lease %s/%s", self.config.namespace, self.config.name)
                waiting_logged = True
            stop.wait(self.config.retry_period_s)
        return False

    def keep(self, stop: threading.Event, on_lost: Callable[[], None]) -> None:
        """Renew every retry period until `stop`; call `on_lost` once renewing failed for the deadline."""
        last_renewed = time.monotonic()
        while not stop.wait(self.config.retry_period_s):
            try:
                if self.try_once():
                    last_renewed = time.monotonic()
                    continue
                log.warning("could not renew Lease %s/%s (another replica wrote it)",
                            self.config.namespace, self.config.name)
            except Exception as exc:  # noqa: BLE001 - a renewal that fails for any reason counts the same
                log.warning("renewing the Lease failed: %s", exc)
            if time.monotonic() - last_renewed >= self.config.renew_deadline_s:
                log.error("lost Lease %s/%s: not renewed for %.0fs", self.config.namespace, self.config.name,
                          self.config.renew_deadline_s)
                on_lost()
                return

    def release(self) -> None:
        """Empty holderIdentity if this replica holds the Lease, so a standby takes over at once."""
        try:
            lease = self._get()
            if lease and (lease.get("spec") or {}).get("holderIdentity") == self.config.identity:
                lease["spec"]["holderIdentity"] = None
                self.kube.request("PUT", f"{self.path}/{quote(self.config.name)}", lease)
                log.info("released Lease %s/%s", self.config.namespace, self.config.name)
        except ApiError as exc:
            log.warning("releasing the Lease failed: %s", exc)
