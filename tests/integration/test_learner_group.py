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
