"""A DDP learner group on the real control plane: two ranks train one tiny network.

The operator turns `spec.learner.replicas: 2` into an Indexed Job of two pods
and a headless Service; the node agent runs each pod as a local process, which
starts its rank under torchrun (c10d rendezvous, gloo over loopback). Pods here
have no DNS names (the node agent is not a kubelet and the cluster has no DNS),
so the operator is configured to put the rendezvous at 127.0.0.1
(`OURO_LEARNER_RENDEZVOUS_HOST`, documented in operator/settings.py) on a port
free for this test; in a cluster it is the pod of index 0 under the Service.
A bootstrap phase (imitation) and a hybrid phase (rollouts on rank 0, PPO on
both ranks) run; both ranks must report, and one set of artifacts be written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .operator_support import (
    OperatorProcess,
    apply,
    apply_crds,
    champion,
    events,
    fake_trainer_command,
    free_port,
    get,
    items,
    run_status,
    tiny_run,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(kube_cluster, node_agent):
    apply_crds(kube_cluster)
    return kube_cluster


def test_two_learner_replicas_train_as_one_ddp_group(cluster, namespace, node_agent, tmp_path):
    apply(cluster, namespace, champion(policy={"postPromotionCheck": {"games": 0}}))
    port = free_port()
    op = OperatorProcess(cluster, namespace, tmp_path, extra_env={
        "OURO_LEARNER_RENDEZVOUS_HOST": "127.0.0.1", "OURO_LEARNER_RENDEZVOUS_PORT": str(port)}).start()
    try:
        apply(cluster, namespace, tiny_run(
            "ddp", phases=("bootstrap", "hybrid"), learner={"replicas": 2},
            model={"architecture": "cnn_simple", "blocks": 2, "channels": 8},
            storage={"persistentVolumeClaim": "ouroboros-artifacts",
                     "url": "file:///var/lib/ouroboros/artifacts/ddp"}))
        cluster.kubectl("wait", "--for=condition=Succeeded", "trainingrun/ddp", "-n", namespace, "--timeout=600s")
    finally:
        op.stop()
    service = get(cluster, "service", namespace, "ddp-learner")
    assert service["spec"]["clusterIP"] == "None"
    status = run_status(cluster, namespace, "ddp")
    store = Path(node_agent.root) / "claims" / namespace / "ouroboros-artifacts" / "ddp"
    for index, phase in enumerate(("bootstrap", "hybrid")):
        job_name = f"ddp-{index}-{phase}"
        job = get(cluster, "job", namespace, job_name)
        assert job["spec"]["completionMode"] == "Indexed" and job["status"]["succeeded"] == 2
        pods = items(cluster, "pods", namespace, f"batch.kubernetes.io/job-name={job_name}")
        results = [json.loads(p["status"]["containerStatuses"][0]["state"]["terminated"]["message"]) for p in pods]
        by_rank = sorted(results, key=lambda r: "learner rank" in r["message"])
        assert len(by_rank) == 2 and "learner rank 1 of 2" in by_rank[1]["message"]  # both ranks ran
        assert by_rank[0]["artifacts"] and by_rank[0]["candidate"] and not by_rank[1]["artifacts"]
        assert by_rank[0]["metrics"]["steps"] == by_rank[1]["metrics"]["steps"] > 0  # in step, together
        recorded = status["phases"][index]
        assert recorded["state"] == "Succeeded" and recorded["placeholder"] is False
        names = [a["name"] for a in recorded["artifacts"]]
        assert sorted(names) == sorted(set(names)) and {"weights", "onnx"} <= set(names)  # one set
        runs = list((store / "runs").iterdir())
        assert len(runs) == 1
        assert [p.name for p in (runs[0] / "models").glob(f"{phase}.*") if p.suffix in (".pt", ".onnx")] != []
        progress = sorted(p.name for p in (runs[0] / "progress").glob(f"{phase}-*.json"))
        assert progress == [f"{phase}-w0.json"]  # rank 1 wrote nothing to the store


def test_a_failed_rank_fails_its_group_and_the_retry_is_a_whole_new_group(cluster, namespace, node_agent, tmp_path):
    """The first learner pod to start exits with an injected failure (tests/integration/fake_trainer.py)
    while its peer waits at the rendezvous: the Job fails as a whole (backoffLimit 0), the Job
    controller stops the peer, and the operator's retry is a new Job of two fresh ranks."""
    apply(cluster, namespace, champion(policy={"postPromotionCheck": {"games": 0}}))
    control = tmp_path / "control"
    control.mkdir()
    (control / "fail-bootstrap").write_text("1")
    op = OperatorProcess(cluster, namespace, tmp_path, trainer_command=fake_trainer_command(control), extra_env={
        "OURO_LEARNER_RENDEZVOUS_HOST": "127.0.0.1", "OURO_LEARNER_RENDEZVOUS_PORT": str(free_port())}).start()
    try:
        apply(cluster, namespace, tiny_run(
            "again", phases=("bootstrap",), learner={"replicas": 2}, backoffLimit=2,
            model={"architecture": "cnn_simple", "blocks": 2, "channels": 8},
            storage={"persistentVolumeClaim": "ouroboros-artifacts",
                     "url": "file:///var/lib/ouroboros/artifacts/again"}))
        cluster.kubectl("wait", "--for=condition=Succeeded", "trainingrun/again", "-n", namespace, "--timeout=600s")
    finally:
        op.stop()
    first = get(cluster, "job", namespace, "again-0-bootstrap")
    assert first["status"].get("failed", 0) >= 1 and not first["status"].get("succeeded")
    assert any(c["type"] == "Failed" and c["status"] == "True" for c in first["status"]["conditions"])
    retry = get(cluster, "job", namespace, "again-0-bootstrap-r1")
    assert retry["status"]["succeeded"] == 2  # both ranks again, not a replacement for the one that failed
    status = run_status(cluster, namespace, "again")["phases"][0]
    assert status["attempts"] >= 2 and status["state"] == "Succeeded"
    retrying = [e["message"] for e in events(cluster, namespace, "again") if e["reason"] == "PhaseRetrying"]
    assert any("injected failure 1" in m for m in retrying), retrying
    assert len(list(control.glob("started-bootstrap-*"))) >= 3  # 1 failed + 2 ranks of the retry
