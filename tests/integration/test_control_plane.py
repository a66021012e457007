"""The test control plane behaves like a cluster where it matters to the operator.

The operator's integration tests rely on three things: a real API server of
the pinned release, Jobs whose pods run and report a termination message,
and garbage collection through ownerReferences. Each is checked here so a
failure points at the harness, not at the operator.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest

from .kube import controlplane
from .kube import node_agent as node_agent_module

pytestmark = pytest.mark.integration

ARTIFACTS_PVC = Path(__file__).resolve().parents[2] / "manifests" / "examples" / "artifacts-pvc.yaml"


def _wait_for(predicate, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_api_server_reports_the_pinned_release(kube_cluster):
    version = json.loads(kube_cluster.kubectl("version", "-o", "json").stdout)

    pinned = controlplane.versions()["KUBERNETES_VERSION"]
    assert version["serverVersion"]["gitVersion"] == pinned
    assert version["clientVersion"]["gitVersion"] == pinned
    major, minor = pinned.removeprefix("v").split(".")[:2]
    assert (version["serverVersion"]["major"], version["serverVersion"]["minor"]) == (major, minor)


def _job(name: str, script: str, **spec) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "main",
                    "image": "ouroboros-trainer:test",
                    "command": ["python", "-c", script],
                    "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                }],
            }},
            **spec,
        },
    }


def _job_pods(kube_cluster, namespace: str, job: str) -> list[dict]:
    return json.loads(kube_cluster.kubectl(
        "get", "pods", "-n", namespace, "-l", f"job-name={job}", "-o", "json").stdout)["items"]


def _job_pod(kube_cluster, namespace: str, job: str) -> dict:
    pods = _job_pods(kube_cluster, namespace, job)
    assert len(pods) == 1, [pod["metadata"]["name"] for pod in pods]
    return pods[0]


def test_job_pod_runs_and_reports_its_termination_message(kube_cluster, node_agent, namespace):
    script = (
        "import json, os\n"
        "result = {'pod': os.environ['POD_NAME'], 'metrics': {'win_rate': 0.75}}\n"
        "open('/dev/termination-log', 'w').write(json.dumps(result))\n"
        "print('phase done at niceness', os.nice(0))\n"
    )
    kube_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(_job("phase", script)))

    kube_cluster.kubectl("wait", "-n", namespace, "--for=condition=Complete", "job/phase", "--timeout=90s")

    pod = _job_pod(kube_cluster, namespace, "phase")
    assert pod["spec"]["nodeName"] == node_agent.node_name
    assert pod["status"]["phase"] == "Succeeded"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0
    assert json.loads(terminated["message"]) == {
        "pod": pod["metadata"]["name"],
        "metrics": {"win_rate": 0.75},
    }
    # the pod ran below the control plane's priority, so a busy pod cannot starve the API server
    niceness = min(19, os.nice(0) + node_agent_module.POD_NICENESS)
    assert node_agent.logs(namespace, pod["metadata"]["name"]) == f"phase done at niceness {niceness}\n"


def test_failing_job_pod_reports_exit_code_and_message(kube_cluster, node_agent, namespace):
    script = (
        "import os, sys\n"
        "open(os.environ['OURO_TERMINATION_LOG'], 'w').write('out of memory')\n"
        "sys.exit(3)\n"
    )
    kube_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(_job("broken", script)))

    kube_cluster.kubectl("wait", "-n", namespace, "--for=condition=Failed", "job/broken", "--timeout=90s")

    terminated = _job_pod(kube_cluster, namespace, "broken")["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["message"]) == (3, "out of memory")


def test_configmap_volume_is_mounted_at_its_path(kube_cluster, node_agent, namespace):
    kube_cluster.kubectl("create", "configmap", "run-config", "-n", namespace,
                         "--from-literal=run.json={\"games\": 4, \"out\": \"/artifacts/run-1\"}")
    script = (
        "import json, pathlib\n"
        "config = json.load(open('/etc/ouroboros/run.json'))\n"
        "pathlib.Path(config['out']).mkdir(parents=True)\n"
        "open('/dev/termination-log', 'w').write(json.dumps({'games': config['games']}))\n"
    )
    job = _job("configured", script)
    pod_spec = job["spec"]["template"]["spec"]
    pod_spec["volumes"] = [
        {"name": "config", "configMap": {"name": "run-config"}},
        {"name": "artifacts", "emptyDir": {}},
    ]
    pod_spec["containers"][0]["volumeMounts"] = [
        {"name": "config", "mountPath": "/etc/ouroboros", "readOnly": True},
        {"name": "artifacts", "mountPath": "/artifacts"},
    ]
    kube_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(job))

    kube_cluster.kubectl("wait", "-n", namespace, "--for=condition=Complete", "job/configured", "--timeout=90s")

    pod = _job_pod(kube_cluster, namespace, "configured")
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert json.loads(terminated["message"]) == {"games": 4}
    assert (node_agent.pod_dir(namespace, pod["metadata"]["name"]) / "volumes" / "artifacts" / "run-1").is_dir()


def test_deleting_a_job_kills_its_running_pod(kube_cluster, node_agent, namespace):
    kube_cluster.kubectl("apply", "-n", namespace, "-f", "-",
                         input=json.dumps(_job("sleeper", "import time; time.sleep(600)")))
    pod = _wait_for(
        lambda: next((pod for pod in _job_pods(kube_cluster, namespace, "sleeper")
                      if pod["status"].get("phase") == "Running"), None),
        what="the sleeper pod to run",
    )
    pid = int(pod["status"]["containerStatuses"][0]["containerID"].removeprefix("ouro://"))

    kube_cluster.kubectl("delete", "job", "sleeper", "-n", namespace, "--cascade=foreground", "--timeout=60s")

    assert _job_pods(kube_cluster, namespace, "sleeper") == []
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_deleting_an_owner_deletes_what_it_owns(kube_cluster, namespace):
    owner = json.loads(kube_cluster.kubectl(
        "create", "configmap", "owner", "-n", namespace, "-o", "json").stdout)
    owned = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "owned",
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                "uid": owner["metadata"]["uid"], "blockOwnerDeletion": True, "controller": True,
            }],
        },
    }
    kube_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(owned))

    kube_cluster.kubectl("delete", "configmap", "owner", "-n", namespace)

    _wait_for(
        lambda: kube_cluster.kubectl("get", "configmap", "owned", "-n", namespace, check=False).returncode != 0,
        what="the garbage collector to delete the owned ConfigMap",
    )


def test_indexed_job_runs_every_index(kube_cluster, node_agent, namespace):
    script = "import sys; open('/dev/termination-log', 'w').write(sys.argv[1])"
    job = _job("workers", script, completionMode="Indexed", completions=3, parallelism=3)
    job["spec"]["template"]["spec"]["containers"][0]["args"] = ["$(JOB_COMPLETION_INDEX)"]
    kube_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(job))

    kube_cluster.kubectl("wait", "-n", namespace, "--for=condition=Complete", "job/workers", "--timeout=90s")

    messages = sorted(pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
                      for pod in _job_pods(kube_cluster, namespace, "workers"))
    assert messages == ["0", "1", "2"]


def test_pods_mounting_one_claim_share_its_files(kube_cluster, node_agent, namespace):
    def job_with_claim(name: str, script: str) -> dict:
        job = _job(name, script)
        pod_spec = job["spec"]["template"]["spec"]
        pod_spec["volumes"] = [{"name": "store", "persistentVolumeClaim": {"claimName": "artifacts"}}]
        pod_spec["containers"][0]["volumeMounts"] = [{"name": "store", "mountPath": "/var/lib/ouro"}]
        return job

    writer = job_with_claim("writer", "open('/var/lib/ouro/model.onnx', 'w').write('weights')")
    reader = job_with_claim("reader", "open('/dev/termination-log', 'w').write(open('/var/lib/ouro/model.onnx').read())")
    kube_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(writer))
    kube_cluster.kubectl("wait", "-n", namespace, "--for=condition=Complete", "job/writer", "--timeout=90s")
    kube_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(reader))
    kube_cluster.kubectl("wait", "-n", namespace, "--for=condition=Complete", "job/reader", "--timeout=90s")

    terminated = _job_pod(kube_cluster, namespace, "reader")["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["message"] == "weights"


def test_a_deleted_namespace_holding_a_claim_finishes_deleting(kube_cluster, node_agent):
    """A namespace with a PersistentVolumeClaim that a finished pod mounted goes away once deleted.
    The claim carries the `kubernetes.io/pvc-protection` finalizer (the API server's admission puts
    it on every claim); without the controller that removes it, such a namespace stays Terminating
    and the namespace controller retries it, and every other one like it, until the session ends."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    kube_cluster.kubectl("create", "namespace", name)
    try:
        kube_cluster.kubectl("apply", "-n", name, "-f", str(ARTIFACTS_PVC))
        claim = json.loads(kube_cluster.kubectl("get", "pvc", "-n", name, "-o", "json").stdout)["items"][0]
        assert "kubernetes.io/pvc-protection" in claim["metadata"]["finalizers"]
        job = _job("mounter", "open('/var/lib/ouro/x', 'w').write('x')")
        pod_spec = job["spec"]["template"]["spec"]
        pod_spec["volumes"] = [{"name": "store", "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}}]
        pod_spec["containers"][0]["volumeMounts"] = [{"name": "store", "mountPath": "/var/lib/ouro"}]
        kube_cluster.kubectl("apply", "-n", name, "-f", "-", input=json.dumps(job))
        kube_cluster.kubectl("wait", "-n", name, "--for=condition=Complete", "job/mounter", "--timeout=90s")
    finally:
        kube_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
    _wait_for(lambda: kube_cluster.kubectl("get", "namespace", name, check=False).returncode != 0,
              timeout=90, what=f"namespace {name} to finish deleting")
