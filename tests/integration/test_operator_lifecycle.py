"""TrainingRuns end to end: the operator process, a real API server, Jobs run by the node agent.

Each test starts its own operator (`python -m ouroboros.operator`) watching
only the test's namespace; the Jobs' pods run `ouro phase ...` (or the
fake_trainer wrapper around it) as local processes of this venv.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from .operator_support import (
    OperatorProcess,
    apply,
    apply_crds,
    champion,
    condition,
    events,
    fake_trainer_command,
    get,
    items,
    run_status,
    tiny_run,
    wait_for,
)

pytestmark = pytest.mark.integration
ALL_PHASES = ["bootstrap", "hybrid", "self_play", "continuous", "evaluate"]


@pytest.fixture(scope="module")
def cluster(kube_cluster, node_agent):
    apply_crds(kube_cluster)
    return kube_cluster


@pytest.fixture(autouse=True)
def main_champion(cluster, namespace):
    """The Champion the tiny runs challenge (runs naming a missing one wait): no post-promotion check."""
    apply(cluster, namespace, champion(policy={"postPromotionCheck": {"games": 0}}))


@pytest.fixture
def operator(cluster, namespace, tmp_path):
    """Start an operator for this test's namespace (call it, optionally with a trainer command)."""
    started = []

    def start(trainer_command=None, **kwargs):
        proc = OperatorProcess(cluster, namespace, tmp_path, trainer_command=trainer_command, **kwargs).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def phase_jobs(cluster, namespace):
    """The runs' phase Jobs (the Champion's registry Jobs are not phases)."""
    return sorted(j["metadata"]["name"] for j in items(cluster, "jobs", namespace, "ouroboros.dev/phase"))


def test_a_tiny_run_goes_through_every_phase(cluster, namespace, operator):
    op = operator([str(Path(sys.executable).parent / "ouro")])  # the console script, as in the image
    apply(cluster, namespace, tiny_run("tiny"))
    cluster.kubectl("wait", "--for=condition=Succeeded", "trainingrun/tiny", "-n", namespace, "--timeout=300s")
    status = run_status(cluster, namespace, "tiny")
    assert status["phase"] == "Succeeded" and status["observedGeneration"] == 1
    assert [p["name"] for p in status["phases"]] == ALL_PHASES
    for i, phase in enumerate(status["phases"]):
        assert phase["state"] == "Succeeded" and phase["attempts"] == 1
        assert phase["placeholder"] is False
        if phase["name"] == "evaluate":  # the gate against the champion, as the run's spec.promotion says
            assert phase["metrics"]["games"] >= 0 and any(a["name"] == "gate" for a in phase["artifacts"])
        else:  # the training phases train for real (tiny budgets) and report what they did
            assert phase["placeholder"] is False and phase["metrics"]["games"] >= 2
            assert any(a["name"] == "onnx" for a in phase["artifacts"])
        assert phase["job"] == f"tiny-{i}-{phase['name'].replace('_', '-')}"
        assert phase["startTime"] <= phase["completionTime"]
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Running": "False", "Suspended": "False", "Succeeded": "True", "Failed": "False",
    }
    assert phase_jobs(cluster, namespace) == [p["job"] for p in status["phases"]]
    # every Job carries what the builders put there, and ran the phase verb
    job = get(cluster, "job", namespace, "tiny-2-self-play")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][-6:] == [
        "phase", "self_play", "--run-config", "/etc/ouroboros/run.json", "--result", "/dev/termination-log",
    ]
    assert job["metadata"]["ownerReferences"][0]["name"] == "tiny"
    assert container["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    reasons = [e["reason"] for e in events(cluster, namespace, "tiny")]
    assert reasons.count("PhaseStarted") == 5 and reasons.count("PhaseSucceeded") == 5
    assert "Succeeded" in reasons
    promotion = status["promotion"]  # whatever champion the shared store holds, the gate decided
    assert promotion["decision"] in ("Promoted", "Rejected", "Inconclusive") and promotion["reason"]
    assert promotion["statistics"]["verdict"] in ("promote", "reject", "inconclusive")
    assert promotion["statistics"]["report"].endswith("/evaluate/gate.json")
    table = cluster.kubectl("get", "trainingruns", "-n", namespace, "-o", "wide").stdout
    assert "Succeeded" in table and "evaluate" in table and promotion["decision"] in table
    metrics = op.metrics()
    assert 'ouroboros_trainingrun_status{name="tiny",namespace="' in metrics
    assert 'ouroboros_operator_actions_total{action="create_job",controller="trainingrun"} 5.0' in metrics


def test_self_play_workers_run_as_an_indexed_job(cluster, namespace, operator):
    operator()
    apply(cluster, namespace, tiny_run(
        "wide", phases=("bootstrap", "self_play"), selfPlayWorkers=3,
        storage={"persistentVolumeClaim": "ouroboros-artifacts", "url": "file:///var/lib/ouroboros/artifacts/wide"},
    ))
    cluster.kubectl("wait", "--for=condition=Succeeded", "trainingrun/wide", "-n", namespace, "--timeout=300s")
    job = get(cluster, "job", namespace, "wide-1-self-play")
    assert job["spec"]["completionMode"] == "Indexed" and job["status"]["succeeded"] == 3
    assert get(cluster, "job", namespace, "wide-0-bootstrap")["spec"].get("completions", 1) == 1
    pods = items(cluster, "pods", namespace, "batch.kubernetes.io/job-name=wide-1-self-play")
    assert len(pods) == 3
    volumes = pods[0]["spec"]["volumes"]
    assert {"name": "artifacts", "persistentVolumeClaim": {"claimName": "ouroboros-artifacts"}} in volumes
    assert run_status(cluster, namespace, "wide")["phases"][1]["placeholder"] is False


def test_deleting_a_run_deletes_its_jobs_and_config(cluster, namespace, operator):
    operator()
    apply(cluster, namespace, tiny_run("gone", phases=("hybrid",)))
    cluster.kubectl("wait", "--for=condition=Succeeded", "trainingrun/gone", "-n", namespace, "--timeout=60s")
    assert phase_jobs(cluster, namespace) == ["gone-0-hybrid"]
    cluster.kubectl("delete", "trainingrun", "gone", "-n", namespace)
    wait_for(lambda: not phase_jobs(cluster, namespace), timeout=60, what="Jobs garbage-collected")
    wait_for(lambda: get(cluster, "configmap", namespace, "gone-config") is None, timeout=60, what="ConfigMap gone")


def test_a_failing_phase_is_retried_then_the_run_fails(cluster, namespace, operator, tmp_path):
    control = tmp_path / "control"
    command = fake_trainer_command(control)
    (control / "fail-hybrid").write_text("1")  # hybrid fails once, then passes
    (control / "fail-self_play").write_text("99")  # self_play never passes
    operator(command)
    apply(cluster, namespace, tiny_run("flaky", phases=("bootstrap", "hybrid", "self_play", "evaluate"),
                                       backoffLimit=1))
    cluster.kubectl("wait", "--for=condition=Failed", "trainingrun/flaky", "-n", namespace, "--timeout=300s")
    status = run_status(cluster, namespace, "flaky")
    phases = status["phases"]
    assert [p["state"] for p in phases] == ["Succeeded", "Succeeded", "Failed", "Pending"]
    assert phases[1]["attempts"] == 2 and phases[1]["job"] == "flaky-1-hybrid-r1"
    assert phases[2]["attempts"] == 2 and phases[2]["reason"] == "PhaseError"
    assert "injected failure 2" in phases[2]["message"] and "exit code 3" in phases[2]["message"]
    failed = condition(status, "Failed")
    assert failed["status"] == "True" and failed["reason"] == "BackoffLimitExceeded"
    assert "self_play" in failed["message"] and "injected failure" in failed["message"]
    assert condition(status, "Succeeded")["status"] == "False"
    assert phase_jobs(cluster, namespace) == [
        "flaky-0-bootstrap", "flaky-1-hybrid", "flaky-1-hybrid-r1", "flaky-2-self-play", "flaky-2-self-play-r1",
    ]
    reasons = [e["reason"] for e in events(cluster, namespace, "flaky")]
    assert reasons.count("PhaseRetrying") == 2 and "PhaseFailed" in reasons and "Failed" in reasons
    # the run stays failed: no new Jobs appear
    assert phase_jobs(cluster, namespace) == sorted(phase_jobs(cluster, namespace))
    wait = cluster.kubectl("wait", "--for=condition=Succeeded", "trainingrun/flaky", "-n", namespace,
                           "--timeout=1s", check=False)
    assert wait.returncode != 0


def test_suspend_stops_the_running_phase_and_resume_continues(cluster, namespace, operator, tmp_path):
    control = tmp_path / "control"
    (control).mkdir()
    (control / "hold-hybrid").touch()
    operator(fake_trainer_command(control))
    apply(cluster, namespace, tiny_run("pause", phases=("bootstrap", "hybrid", "evaluate")))
    wait_for(lambda: list(control.glob("started-hybrid-*")), timeout=60, what="hybrid running")
    cluster.kubectl("patch", "trainingrun", "pause", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    cluster.kubectl("wait", "--for=condition=Suspended", "trainingrun/pause", "-n", namespace, "--timeout=60s")
    wait_for(lambda: get(cluster, "job", namespace, "pause-1-hybrid")["spec"].get("suspend") is True,
             timeout=30, what="the hybrid Job suspended")
    wait_for(lambda: not [p for p in items(cluster, "pods", namespace, "batch.kubernetes.io/job-name=pause-1-hybrid")
                          if p["status"].get("phase") in ("Pending", "Running")],
             timeout=60, what="the hybrid pod stopped")
    status = run_status(cluster, namespace, "pause")
    assert status["phase"] == "Suspended" and status["phases"][1]["state"] == "Suspended"
    assert condition(status, "Running")["status"] == "False"
    assert phase_jobs(cluster, namespace) == ["pause-0-bootstrap", "pause-1-hybrid"]
    (control / "release-hybrid").touch()
    cluster.kubectl("patch", "trainingrun", "pause", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    cluster.kubectl("wait", "--for=condition=Succeeded", "trainingrun/pause", "-n", namespace, "--timeout=300s")
    status = run_status(cluster, namespace, "pause")
    assert status["phases"][1]["attempts"] == 1  # resumed, not retried
    assert len(list(control.glob("started-hybrid-*"))) == 2  # the pod ran again after resuming
    reasons = [e["reason"] for e in events(cluster, namespace, "pause")]
    assert "Suspended" in reasons and "Resumed" in reasons
    suspended = condition(status, "Suspended")
    assert suspended["status"] == "False" and suspended["observedGeneration"] == 3


def test_a_run_created_suspended_starts_nothing_until_resumed(cluster, namespace, operator):
    operator()
    apply(cluster, namespace, tiny_run("later", phases=("hybrid",), suspend=True))
    cluster.kubectl("wait", "--for=condition=Suspended", "trainingrun/later", "-n", namespace, "--timeout=60s")
    status = run_status(cluster, namespace, "later")
    assert {c["type"] for c in status["conditions"]} == {"Running", "Suspended", "Succeeded", "Failed"}
    assert condition(status, "Succeeded")["status"] == "Unknown"
    assert phase_jobs(cluster, namespace) == []
    cluster.kubectl("patch", "trainingrun", "later", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    cluster.kubectl("wait", "--for=condition=Succeeded", "trainingrun/later", "-n", namespace, "--timeout=60s")


def test_killing_the_operator_mid_run_loses_nothing(cluster, namespace, operator, tmp_path):
    control = tmp_path / "control"
    control.mkdir()
    for phase in ("hybrid", "self_play"):
        (control / f"hold-{phase}").touch()
    command = fake_trainer_command(control)
    first = operator(command)
    apply(cluster, namespace, tiny_run("crash", phases=("bootstrap", "hybrid", "self_play", "evaluate")))
    wait_for(lambda: list(control.glob("started-hybrid-*")), timeout=60, what="hybrid running")
    first.kill()
    # while the operator is down: hybrid finishes (its result waits in the pod's status)
    (control / "release-hybrid").touch()
    wait_for(lambda: any(c["type"] == "Complete" and c["status"] == "True"
                         for c in get(cluster, "job", namespace, "crash-1-hybrid")["status"].get("conditions", [])),
             timeout=60, what="hybrid Job complete")
    assert run_status(cluster, namespace, "crash")["phases"][1]["state"] == "Running"
    second = operator(command)
    wait_for(lambda: list(control.glob("started-self_play-*")), timeout=60, what="self_play running")
    status = run_status(cluster, namespace, "crash")
    assert status["phases"][1]["state"] == "Succeeded" and status["phases"][1]["placeholder"] is False
    # kill it again right as self_play finishes, and once more without waiting
    second.kill()
    (control / "release-self_play").touch()
    third = operator(command)
    third.kill()
    operator(command)
    cluster.kubectl("wait", "--for=condition=Succeeded", "trainingrun/crash", "-n", namespace, "--timeout=300s")
    status = run_status(cluster, namespace, "crash")
    assert [p["attempts"] for p in status["phases"]] == [1, 1, 1, 1]
    assert all(p["state"] == "Succeeded" for p in status["phases"])
    assert phase_jobs(cluster, namespace) == ["crash-0-bootstrap", "crash-1-hybrid", "crash-2-self-play", "crash-3-evaluate"]
    for phase in ("bootstrap", "hybrid", "self_play", "evaluate"):
        assert len(list(control.glob(f"started-{phase}-*"))) == 1, phase  # each phase ran exactly once
    reasons = [e["reason"] for e in events(cluster, namespace, "crash")]
    assert reasons.count("PhaseSucceeded") == 4 and reasons.count("PhaseStarted") == 4


def test_repeated_kills_at_random_moments(cluster, namespace, operator, tmp_path):
    control = tmp_path / "control"
    command = fake_trainer_command(control)
    rng = random.Random(3)
    apply(cluster, namespace, tiny_run("chaos", phases=ALL_PHASES))
    kills = 0
    while run_status(cluster, namespace, "chaos").get("phase") != "Succeeded" and kills < 12:
        op = operator(command)
        time.sleep(rng.uniform(0.1, 1.5))
        op.kill()
        kills += 1
    operator(command)
    cluster.kubectl("wait", "--for=condition=Succeeded", "trainingrun/chaos", "-n", namespace, "--timeout=300s")
    status = run_status(cluster, namespace, "chaos")
    assert [p["attempts"] for p in status["phases"]] == [1] * 5
    assert len(phase_jobs(cluster, namespace)) == 5
    for phase in ALL_PHASES:
        assert len(list(control.glob(f"started-{phase}-*"))) == 1, phase
    # events follow the status write, so a kill in between may drop one, but never doubles one
    reasons = [e["reason"] for e in events(cluster, namespace, "chaos")]
    assert reasons.count("PhaseSucceeded") <= 5 and reasons.count("PhaseStarted") <= 5
    assert reasons.count("Succeeded") <= 1


def test_the_operator_needs_no_more_than_its_cluster_role(cluster, namespace, operator, tmp_path):
    manifests = Path(__file__).resolve().parents[2] / "manifests" / "operator"
    # namespace, RBAC, Service and Deployment (no Deployment controller runs here, so no pod starts)
    cluster.kubectl("apply", "-f", str(manifests))
    token = cluster.kubectl("create", "token", "ouroboros-operator", "-n", "ouroboros-system").stdout.strip()
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    for user in config["users"]:
        user["user"] = {"token": token}
    kubeconfig = tmp_path / "operator-kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    whoami = cluster.kubectl("auth", "whoami", "--kubeconfig", str(kubeconfig), "-o", "json")
    assert "system:serviceaccount:ouroboros-system:ouroboros-operator" in whoami.stdout
    op = operator(kubeconfig=kubeconfig)
    apply(cluster, namespace, tiny_run("rbac", phases=("hybrid", "evaluate"), suspend=True))
    cluster.kubectl("wait", "--for=condition=Suspended", "trainingrun/rbac", "-n", namespace, "--timeout=60s")
    cluster.kubectl("patch", "trainingrun", "rbac", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    cluster.kubectl("wait", "--for=condition=Succeeded", "trainingrun/rbac", "-n", namespace, "--timeout=300s")
    assert [e["reason"] for e in events(cluster, namespace, "rbac")].count("PhaseSucceeded") == 2
    assert "Forbidden" not in op.log() and " 403" not in op.log()


def test_ttl_deletes_a_finished_run(cluster, namespace, operator):
    operator(resync_seconds=1)
    apply(cluster, namespace, tiny_run("brief", phases=("hybrid",), ttlSecondsAfterFinished=2))
    cluster.kubectl("wait", "--for=condition=Succeeded", "trainingrun/brief", "-n", namespace, "--timeout=60s")
    wait_for(lambda: get(cluster, "trainingrun", namespace, "brief") is None, timeout=30, what="run deleted by TTL")


def test_kubectl_wait_blocks_until_the_run_succeeds(cluster, namespace, operator):
    operator()
    apply(cluster, namespace, json.dumps(tiny_run("waited", phases=("bootstrap", "evaluate"), suspend=True)))
    waiter = subprocess.Popen(
        [str(cluster.bin_dir / "kubectl"), "wait", "--for=condition=Succeeded", "trainingrun/waited",
         "-n", namespace, "--timeout=300s"],
        env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    with pytest.raises(subprocess.TimeoutExpired):
        waiter.wait(timeout=3)  # suspended: not done, so kubectl keeps waiting
    cluster.kubectl("patch", "trainingrun", "waited", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    out, err = waiter.communicate(timeout=150)
    assert waiter.returncode == 0, err
    assert "condition met" in out


def test_a_phase_whose_pods_cannot_be_created_says_why(cluster, namespace, operator):
    """An admission policy refuses the phase's pod (as PodSecurity or a quota would); that is only
    a FailedCreate Event on the Job, and the run must say so instead of 'running'."""
    policy = f"deny-pods-{namespace}"
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
         "metadata": {"name": policy},
         "spec": {"failurePolicy": "Fail",
                  "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                          "operations": ["CREATE"], "resources": ["pods"]}]},
                  "validations": [{"expression": "false", "message": "pods are not allowed in this namespace"}]}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": {"name": policy},
         "spec": {"policyName": policy, "validationActions": ["Deny"],
                  "matchResources": {"namespaceSelector": {"matchLabels": {
                      "kubernetes.io/metadata.name": namespace}}}}},
    ]}))
    try:
        time.sleep(2)  # the API server loads a new policy within a second or so
        operator([str(Path(sys.executable).parent / "ouro")])
        apply(cluster, namespace, tiny_run("denied", phases=("bootstrap",)))

        def stuck():
            running = condition(run_status(cluster, namespace, "denied"), "Running") or {}
            return running if running.get("reason") == "PodsNotCreated" else None

        running = wait_for(stuck, timeout=120, what="the run to report PodsNotCreated")
        assert "FailedCreate" in running["message"] and "not allowed in this namespace" in running["message"]
        assert "PodsNotCreated" in [e["reason"] for e in events(cluster, namespace, "denied")]
        job = get(cluster, "job", namespace, "denied-0-bootstrap")
        assert job["spec"]["activeDeadlineSeconds"] > 0  # and it cannot hang forever
    finally:
        cluster.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", policy,
                        "--ignore-not-found")


def test_a_run_whose_shared_store_is_missing_waits_and_says_why(cluster, namespace, operator):
    cluster.kubectl("delete", "pvc", "ouroboros-artifacts", "-n", namespace, "--wait=false")
    operator([str(Path(sys.executable).parent / "ouro")])
    apply(cluster, namespace, tiny_run("nostore", phases=("bootstrap",)))

    def held():
        running = condition(run_status(cluster, namespace, "nostore"), "Running") or {}
        return running if running.get("reason") == "StorageUnavailable" else None

    running = wait_for(held, timeout=60, what="the run to report StorageUnavailable")
    assert "'ouroboros-artifacts'" in running["message"]  # does not exist, or is being deleted
    assert phase_jobs(cluster, namespace) == []  # nothing started on a private disk
