"""TrainingRuns queued by the real Kueue (sigs.k8s.io/kueue, built from its Go module) on the test control plane.

Kueue's manager runs as a local process against the test API server (see
kube/kueue.py for how it is started without a Service network); the operator
and the node agent are the same as in the other integration tests. Quotas are
tiny (100m CPU per phase pod) so one ClusterQueue admits one phase Job at a
time. What a user relies on: a run whose Job Kueue holds shows Queued with
Kueue's reason, runs once admitted, and a preempted phase comes back as the
same Job, counting neither a failure nor a retry.
"""

from __future__ import annotations

import pytest

from .kube import kueue as kueue_module
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


@pytest.fixture(scope="module")
def kueue(request, kube_cluster, node_agent, tmp_path_factory):
    """The real Kueue manager on the test control plane (kube/kueue.py); skips, saying why, if it cannot
    be built here. The first build takes minutes (see the README), so its progress is shown."""
    apply_crds(kube_cluster)
    capture = request.config.pluginmanager.getplugin("capturemanager")
    try:
        with capture.global_and_fixture_disabled():
            kueue_module.build()  # cached after the first time; `running` finds it there
    except kueue_module.KueueUnavailable as exc:
        pytest.skip(f"Kueue could not be built here: {exc}")
    with kueue_module.running(kube_cluster, tmp_path_factory.mktemp("kueue")) as running:
        yield running


@pytest.fixture
def queue(kube_cluster, kueue, namespace):
    """A ResourceFlavor, a ClusterQueue with quota for one tiny phase pod (preempting lower priorities)
    for this namespace only, and the LocalQueue `team` in it; WorkloadPriorityClasses `<ns>-low`/`-high`."""
    ns = namespace
    objects = [
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor", "metadata": {"name": f"{ns}-flavor"}},
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": f"{ns}-cq"},
         "spec": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
                  "preemption": {"withinClusterQueue": "LowerPriority"},
                  "resourceGroups": [{"coveredResources": ["cpu", "memory"], "flavors": [
                      {"name": f"{ns}-flavor", "resources": [{"name": "cpu", "nominalQuota": "150m"},
                                                             {"name": "memory", "nominalQuota": "1Gi"}]}]}]}},
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue", "metadata": {"name": "team", "namespace": ns},
         "spec": {"clusterQueue": f"{ns}-cq"}},
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "WorkloadPriorityClass", "metadata": {"name": f"{ns}-low"},
         "value": 10},
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "WorkloadPriorityClass", "metadata": {"name": f"{ns}-high"},
         "value": 1000},
    ]
    for obj in objects:
        apply(kube_cluster, ns, obj)
    wait_for(lambda: condition((get(kube_cluster, "localqueue", ns, "team") or {}).get("status") or {}, "Active"),
             timeout=60, what="the LocalQueue active")
    yield "team"
    for kind, name in (("clusterqueue", f"{ns}-cq"), ("resourceflavor", f"{ns}-flavor"),
                       ("workloadpriorityclass", f"{ns}-low"), ("workloadpriorityclass", f"{ns}-high")):
        kube_cluster.kubectl("delete", kind, name, "--wait=false", check=False)


@pytest.fixture
def operator(kube_cluster, namespace, tmp_path):
    apply(kube_cluster, namespace, champion(policy={"postPromotionCheck": {"games": 0}}))
    control = tmp_path / "control"
    proc = OperatorProcess(kube_cluster, namespace, tmp_path, trainer_command=fake_trainer_command(control)).start()
    yield control, proc
    proc.stop()


def queued_run(name, queue, phases=("hybrid",), priority=None):
    body = tiny_run(name, phases=phases)
    body["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": queue}
    if priority:
        body["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] = priority
    return body


def no_job_suspend_patches(proc) -> bool:
    """The operator's own count of the spec.suspend patches it made to Jobs: none, Kueue made them all."""
    text = proc.metrics()
    assert 'action="create_job"' in text  # the counter is there to read
    return 'action="suspend_job"' not in text and 'action="resume_job"' not in text


def phase(cluster, namespace, run):
    return run_status(cluster, namespace, run).get("phase")


def job_names(cluster, namespace):
    return sorted(j["metadata"]["name"] for j in items(cluster, "jobs", namespace, "ouroboros.dev/phase"))


def test_two_runs_share_a_queue_with_room_for_one(kube_cluster, namespace, queue, operator):
    """One runs, the other is Queued with Kueue's reason; suspending the running one (through its Workload)
    hands the quota over, and resuming it queues it until the other finishes. One Job and one attempt each."""
    cluster, (control, proc) = kube_cluster, operator
    (control / "hold-hybrid").touch()
    apply(cluster, namespace, queued_run("first", queue))
    wait_for(lambda: phase(cluster, namespace, "first") == "Running" and list(control.glob("started-hybrid-*")),
             timeout=120, what="first admitted and running")
    job = get(cluster, "job", namespace, "first-0-hybrid")
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == queue

    apply(cluster, namespace, queued_run("second", queue))
    # Kueue keeps second's Job suspended while first holds the quota, and the run says why
    wait_for(lambda: "insufficient" in (condition(run_status(cluster, namespace, "second"), "Running") or {}).get(
        "message", ""), timeout=90, what="second Queued with Kueue's quota message")
    status = run_status(cluster, namespace, "second")
    assert status["phase"] == "Queued" and status["phases"][0]["state"] == "Queued"
    assert condition(status, "Running")["reason"] == "Queued"
    assert get(cluster, "job", namespace, "second-0-hybrid")["spec"]["suspend"] is True
    assert len(list(control.glob("started-hybrid-*"))) == 1  # only first's pod ever started
    header, row = cluster.kubectl("get", "tr", "second", "-n", namespace, "-o", "wide").stdout.splitlines()[:2]
    assert "QUEUE" in header.split() and row.split()[1] == "Queued" and queue in row.split()

    # suspending first deactivates its Workload: Kueue stops its Job and admits second in its place
    cluster.kubectl("patch", "trainingrun", "first", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    cluster.kubectl("wait", "--for=condition=Suspended", "trainingrun/first", "-n", namespace, "--timeout=60s")
    uid = get(cluster, "job", namespace, "first-0-hybrid")["metadata"]["uid"]
    [workload] = items(cluster, "workloads", namespace, f"kueue.x-k8s.io/job-uid={uid}")
    assert workload["spec"]["active"] is False
    assert workload["metadata"]["annotations"]["ouroboros.dev/deactivated-for-suspend"] == "true"
    wait_for(lambda: phase(cluster, namespace, "second") == "Running" and len(list(control.glob("started-hybrid-*"))) == 2,
             timeout=120, what="second admitted once first's quota was released")
    assert get(cluster, "job", namespace, "first-0-hybrid")["spec"]["suspend"] is True

    # resumed, first waits in the queue again until second finishes
    cluster.kubectl("patch", "trainingrun", "first", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    wait_for(lambda: phase(cluster, namespace, "first") == "Queued", timeout=60, what="first Queued again")
    (control / "release-hybrid").touch()
    cluster.kubectl("wait", "--for=condition=Succeeded", "trainingrun/second", "-n", namespace, "--timeout=300s")
    cluster.kubectl("wait", "--for=condition=Succeeded", "trainingrun/first", "-n", namespace, "--timeout=180s")
    assert len(list(control.glob("started-hybrid-*"))) == 3  # first's pod ran again after it was resumed
    for run in ("first", "second"):
        status = run_status(cluster, namespace, run)
        assert [p["attempts"] for p in status["phases"]] == [1]
    assert job_names(cluster, namespace) == ["first-0-hybrid", "second-0-hybrid"]  # no retry Jobs
    reasons = [e["reason"] for e in events(cluster, namespace, "second")]
    assert "Queued" in reasons and "Admitted" in reasons and "PhaseRetrying" not in reasons
    assert no_job_suspend_patches(proc)


def test_a_preempted_phase_waits_and_resumes_as_the_same_job(kube_cluster, namespace, queue, operator):
    cluster, (control, proc) = kube_cluster, operator
    (control / "hold-hybrid").touch()
    apply(cluster, namespace, queued_run("low", queue, priority=f"{namespace}-low"))
    wait_for(lambda: phase(cluster, namespace, "low") == "Running" and list(control.glob("started-hybrid-*")),
             timeout=120, what="low running")
    # a run of higher priority needs the quota: Kueue evicts low's workload and suspends its Job
    apply(cluster, namespace, queued_run("high", queue, phases=("bootstrap",), priority=f"{namespace}-high"))
    wait_for(lambda: (condition(run_status(cluster, namespace, "low"), "Running") or {}).get("reason") == "Preempted",
             timeout=120, what="low Queued as Preempted")
    wait_for(lambda: "due to prioritization in the ClusterQueue" in condition(
        run_status(cluster, namespace, "low"), "Running")["message"], timeout=60, what="Kueue's eviction message")
    status = run_status(cluster, namespace, "low")
    assert status["phase"] == "Queued" and status["phases"][0]["attempts"] == 1
    assert get(cluster, "job", namespace, "low-0-hybrid")["spec"]["suspend"] is True
    cluster.kubectl("wait", "--for=condition=Succeeded", "trainingrun/high", "-n", namespace, "--timeout=180s")
    # the quota is free again: Kueue resumes low's same Job, whose pod starts over
    wait_for(lambda: len(list(control.glob("started-hybrid-*"))) == 2, timeout=120, what="low's pod started again")
    (control / "release-hybrid").touch()
    cluster.kubectl("wait", "--for=condition=Succeeded", "trainingrun/low", "-n", namespace, "--timeout=180s")
    status = run_status(cluster, namespace, "low")
    assert status["phases"][0]["attempts"] == 1 and status["phases"][0]["job"] == "low-0-hybrid"
    assert job_names(cluster, namespace) == ["high-0-bootstrap", "low-0-hybrid"]
    reasons = [e["reason"] for e in events(cluster, namespace, "low")]
    assert "Preempted" in reasons and "PhaseRetrying" not in reasons and "PhaseFailed" not in reasons
    assert no_job_suspend_patches(proc)


def test_the_example_queues_are_valid_kueue_objects(kube_cluster, kueue, namespace):
    """manifests/examples/kueue/queues.yaml (the README's admin setup) passes Kueue's own schemas."""
    path = kueue_module.REPO / "manifests" / "examples" / "kueue" / "queues.yaml"
    out = kube_cluster.kubectl("apply", "-n", namespace, "--dry-run=server", "-f", str(path))
    assert "clusterqueue.kueue.x-k8s.io/training created (server dry run)" in out.stdout
    assert "localqueue.kueue.x-k8s.io/training created (server dry run)" in out.stdout
