"""A TrainingRun and its Champion on an object store: s3:// with credentials from a Secret.

The real control plane and operator, the node agent running the real `ouro phase`
and `ouro champion job` commands, and a real S3 server (versitygw, tests/s3server.py).
The phase pods get the endpoint and credentials only from the Secret named by
`spec.storage.secretName` (its keys become environment variables, envFrom), so
every phase reads and writes the bucket through them; the operator reads the
run's progress records with the credentials of its own environment, as the
chart's `operator.extraEnv` gives them. No PersistentVolumeClaim is mounted.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest

from .operator_support import (
    OperatorProcess,
    apply,
    apply_crds,
    champion,
    champion_status,
    get,
    run_status,
    tiny_run,
    wait_for,
)

pytestmark = pytest.mark.integration
GAME = "standard-7x7-2p"
OURO = [str(Path(sys.executable).parent / "ouro")]
SECRET = "artifact-store"


@pytest.fixture(scope="module")
def cluster(kube_cluster, node_agent):
    apply_crds(kube_cluster)
    return kube_cluster


def credentials_secret(s3_server) -> dict:
    """The Secret a user writes for an S3 store: the standard AWS variable names as keys."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET}, "type": "Opaque",
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in s3_server.env.items()}}


@pytest.mark.parametrize("operator_credentials", [True, False], ids=["operator-reads-the-bucket", "operator-without-credentials"])
def test_a_run_trains_gates_and_promotes_through_an_s3_bucket(cluster, namespace, node_agent, s3_server, tmp_path,
                                                               operator_credentials):
    """With credentials of its own the operator reads the phases' progress records from the bucket;
    without them (an operator deployed with no `extraEnv`), the run trains, gates and promotes all
    the same and only its progress is unavailable, counted in a metric."""
    # pods can only get the endpoint and credentials from the Secret
    assert not set(s3_server.env) - {"AWS_DEFAULT_REGION"} & set(cluster.env)
    bucket = s3_server.create_bucket()
    url = f"s3://{bucket}/ouroboros"
    storage = {"url": url, "secretName": SECRET}
    apply(cluster, namespace, credentials_secret(s3_server))
    # no instance-metadata lookups where there are no credentials: a machine outside a cloud has none
    extra_env = {"OURO_PROGRESS_SECONDS": "1", "AWS_EC2_METADATA_DISABLED": "true", "HOME": str(tmp_path),
                 "AWS_ENDPOINT_URL": s3_server.endpoint}
    if operator_credentials:
        extra_env.update(s3_server.env)
    operator = OperatorProcess(cluster, namespace, tmp_path, trainer_command=OURO, extra_env=extra_env).start()
    try:
        apply(cluster, namespace, champion(storage=storage, policy={"postPromotionCheck": {"games": 0}}))
        apply(cluster, namespace, tiny_run("s3run", phases=("bootstrap", "evaluate"), storage=storage))
        wait_for(lambda: run_status(cluster, namespace, "s3run").get("phase") in ("Succeeded", "Failed"),
                 timeout=600, interval=1, what="run s3run to finish")
        status = run_status(cluster, namespace, "s3run")
        assert status["phase"] == "Succeeded", (status, operator.log()[-3000:])
        promotion = status["promotion"]
        assert promotion["decision"] == "Promoted" and promotion["reason"] == "FirstChampion"
        for phase in status["phases"]:  # every artifact a phase reports lives in the bucket
            assert phase["artifacts"] and all(a["uri"].startswith(f"{url}/") for a in phase["artifacts"])
        bootstrap = status["phases"][0]
        assert bootstrap["metrics"]["games"] >= 2

        fs = s3_server.filesystem()
        keys = {p.removeprefix(f"{bucket}/ouroboros/") for p in fs.find(bucket)}
        run_folder = next(k.split("/")[1] for k in keys if k.startswith("runs/"))
        assert {f"runs/{run_folder}/models/bootstrap.onnx", f"runs/{run_folder}/evaluate/gate.json"} <= keys
        assert any(k.startswith(f"runs/{run_folder}/replay/bootstrap/shard-") for k in keys)
        assert any(k.startswith(f"runs/{run_folder}/progress/bootstrap-w") for k in keys)
        # the champion pointer in the bucket (what game servers read) and the Champion resource agree
        pointer = json.loads(fs.cat_file(f"{bucket}/ouroboros/champions/{GAME}.json"))
        assert pointer["version"] == promotion["statistics"]["candidate"]
        assert pointer["uri"].startswith(f"{url}/models/")
        mirrored = wait_for(lambda: (s := champion_status(cluster, namespace)).get("version") == pointer["version"]
                            and s, timeout=120, interval=0.5, what="Champion.status to mirror the bucket's pointer")
        assert mirrored["artifact"]["sha256"] == pointer["sha256"] and mirrored["fromRun"] == "s3run"
        # no phase Job mounted a claim: the bucket is the only shared storage
        job = get(cluster, "job", namespace, "s3run-0-bootstrap")
        pod = job["spec"]["template"]["spec"]
        assert not any("persistentVolumeClaim" in v for v in pod["volumes"])
        assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": SECRET}}]
        # while it ran, the operator read the phases' progress records from the bucket (each second)
        # with the credentials of its own environment and never failed to; without them, every read failed
        errors = sum(float(line.rsplit(" ", 1)[1]) for line in operator.metrics().splitlines()
                     if line.startswith("ouroboros_operator_progress_read_errors_total{") and 'name="s3run"' in line)
        assert (errors == 0) if operator_credentials else (errors > 0), errors
    finally:
        operator.stop()
