"""Leader election on the real API server: one leader among replicas, a standby takes over.

Two electors racing for one Lease through the API server's optimistic
concurrency; then two operator processes (as the chart runs them: leader
election on, the Lease in their namespace), of which only the leader creates
Jobs; SIGKILL the leader in the middle of a run, and the standby takes the
Lease over after its duration and finishes the run without a duplicate Job.
"""

from __future__ import annotations

import threading

import kubernetes
import pytest

from ouroboros.operator import leader
from ouroboros.operator.kube import KubeClient

from .operator_support import (
    ElectedOperator,
    apply,
    apply_crds,
    champion,
    get,
    items,
    run_status,
    tiny_run,
    wait_for,
)

pytestmark = pytest.mark.integration


def lease(cluster, namespace: str) -> dict:
    return get(cluster, "lease", namespace, "op") or {}


def holder(cluster, namespace: str) -> str | None:
    return (lease(cluster, namespace).get("spec") or {}).get("holderIdentity")


def test_racing_electors_elect_exactly_one(kube_cluster, namespace):
    config = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(kube_cluster.kubeconfig), client_configuration=config)
    kube = KubeClient(kubernetes.client.ApiClient(config))
    electors = [leader.LeaderElector(kube, leader.ElectionConfig(namespace=namespace, name="race", identity=f"e{i}"))
                for i in range(4)]
    results: dict[str, bool] = {}
    barrier = threading.Barrier(len(electors))

    def contend(elector: leader.LeaderElector) -> None:
        barrier.wait()
        results[elector.config.identity] = elector.try_once()

    threads = [threading.Thread(target=contend, args=(e,)) for e in electors]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    winners = [name for name, won in results.items() if won]
    assert len(results) == 4 and len(winners) == 1, results
    live = get(kube_cluster, "lease", namespace, "race")
    assert live["spec"]["holderIdentity"] == winners[0]
    loser = next(e for e in electors if e.config.identity != winners[0])
    assert loser.try_once() is False  # a live Lease held by another
    winner = next(e for e in electors if e.config.identity == winners[0])
    assert winner.try_once() is True  # the holder renews
    winner.release()
    assert loser.try_once() is True  # released: taken over at once, not after the duration
    assert get(kube_cluster, "lease", namespace, "race")["spec"]["leaseTransitions"] == 1


def test_a_standby_takes_over_when_the_leader_dies(kube_cluster, node_agent, namespace, tmp_path):
    cluster = kube_cluster
    apply_crds(cluster)
    first = ElectedOperator(cluster, namespace, tmp_path, identity="op-a").start()
    wait_for(lambda: holder(cluster, namespace) == "op-a", timeout=60, what="op-a to lead")
    second = ElectedOperator(cluster, namespace, tmp_path, identity="op-b").start()
    try:
        wait_for(lambda: "standing by" in second.log(), timeout=60, what="op-b to stand by")
        apply(cluster, namespace, champion(policy={"postPromotionCheck": {"games": 0}}))  # runs wait without one
        apply(cluster, namespace, tiny_run("led", phases=("bootstrap", "hybrid", "evaluate")))
        wait_for(lambda: items(cluster, "jobs", namespace), timeout=120, what="the leader's first Job")
        assert "create_job" not in second.metrics()  # the standby has done nothing
        first.kill()  # SIGKILL: no release, the Lease must expire
        wait_for(lambda: holder(cluster, namespace) == "op-b", timeout=60, what="op-b to take over")
        cluster.kubectl("wait", "--for=condition=Succeeded", "trainingrun/led", "-n", namespace, "--timeout=300s")
        jobs = sorted(j["metadata"]["name"] for j in items(cluster, "jobs", namespace)
                      if j["metadata"]["name"].startswith("led-"))  # the Champion's sync Jobs aside
        assert jobs == ["led-0-bootstrap", "led-1-hybrid", "led-2-evaluate"]  # no phase ran twice
        assert run_status(cluster, namespace, "led")["phase"] == "Succeeded"
        assert lease(cluster, namespace)["spec"]["leaseTransitions"] == 1
    finally:
        first.stop()
        second.stop()
    assert "released Lease" in second.log()  # a clean stop hands the Lease on at once
