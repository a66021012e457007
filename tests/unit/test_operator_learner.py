"""A DDP learner group (spec.learner.replicas > 1): the Job, the headless Service, the retries.

The builders' output is asserted field by field (what the Job controller, DNS and
torchrun rely on); the lifecycle tests drive `lifecycle.decide` as the handlers do.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from ouroboros.operator import attempts, lifecycle
from ouroboros.operator.builders import learner, manifests
from ouroboros.operator.observe import JobState, ObservedJob, ObservedPod
from ouroboros.operator.resources import Champion, PhaseName, TrainingRun
from ouroboros.operator.settings import JobSettings, OperatorSettings

pytestmark = pytest.mark.unit

UID = "0b8e6a6e-1111-2222-3333-444455556666"
SETTINGS = JobSettings()
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_run(name="tiny", **spec):
    body = {
        "metadata": {"name": name, "namespace": "ns", "uid": UID, "generation": 1},
        "spec": {"champion": "main", "phases": [{"name": "bootstrap"}, {"name": "self_play"}, {"name": "evaluate"}],
                 "learner": {"replicas": 3}, "storage": {"url": "s3://bucket/p"}},
    }
    body["spec"].update(spec)
    return TrainingRun.model_validate(body)


def env_of(job):
    return {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}


@pytest.mark.parametrize("index", [0, 1])
def test_a_training_phase_of_a_learner_group_is_an_indexed_job_of_its_replicas(index):
    run = make_run()
    job = manifests.phase_job(run, index, 1, SETTINGS)
    name = job["metadata"]["name"]
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (
        "Indexed", 3, 3, 0)
    pod = spec["template"]["spec"]
    assert pod["subdomain"] == "tiny-learner" and pod["restartPolicy"] == "Never"
    env = env_of(job)
    assert env["OURO_LEARNER_REPLICAS"] == "3"
    assert env["OURO_RENDEZVOUS_ENDPOINT"] == f"{name}-0.tiny-learner:29400"
    assert env["OURO_RENDEZVOUS_ID"] == name  # a retry (-r1, -r2) never meets an earlier attempt's ranks
    assert pod["containers"][0]["ports"] == [{"name": "rendezvous", "containerPort": 29400, "protocol": "TCP"}]
    assert pod["containers"][0]["command"][-6:-4] == ["phase", run.spec.phases[index].name.value]


def test_evaluate_and_a_learner_of_one_keep_a_plain_job():
    run = make_run()
    evaluate = manifests.phase_job(run, 2, 0, SETTINGS)
    assert "completionMode" not in evaluate["spec"] and "OURO_LEARNER_REPLICAS" not in env_of(evaluate)
    alone = manifests.phase_job(make_run(learner={"replicas": 1}), 0, 0, SETTINGS)
    assert alone == manifests.phase_job(make_run(learner={}), 0, 0, SETTINGS)
    assert "completionMode" not in alone["spec"] and "subdomain" not in alone["spec"]["template"]["spec"]


def test_the_headless_service_names_every_learner_pod_of_the_run():
    run = make_run("a" * 70)
    service = learner.headless_service(run, SETTINGS, manifests.owner_reference(run))
    assert service["metadata"]["name"] == learner.service_name(run.metadata.name)
    assert len(service["metadata"]["name"]) <= 63 and service["metadata"]["name"].endswith("-learner")
    assert service["metadata"]["ownerReferences"][0]["uid"] == UID
    spec = service["spec"]
    assert spec["clusterIP"] == "None" and spec["publishNotReadyAddresses"] is True
    job = manifests.phase_job(run, 0, 0, SETTINGS)
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert all(labels[k] == v for k, v in spec["selector"].items())  # it selects the group's pods
    assert job["spec"]["template"]["spec"]["subdomain"] == service["metadata"]["name"]


def test_the_rendezvous_host_and_port_come_from_the_operator_settings():
    settings = OperatorSettings.from_env({"OURO_LEARNER_RENDEZVOUS_HOST": "127.0.0.1",
                                          "OURO_LEARNER_RENDEZVOUS_PORT": "31234"}).jobs
    job = manifests.phase_job(make_run(), 0, 0, settings)
    assert env_of(job)["OURO_RENDEZVOUS_ENDPOINT"] == "127.0.0.1:31234"
    for bad in ("0", "65536", "http", "-1"):
        with pytest.raises(ValueError, match=f"OURO_LEARNER_RENDEZVOUS_PORT: '{bad}' is not a TCP port"):
            OperatorSettings.from_env({"OURO_LEARNER_RENDEZVOUS_PORT": bad})


def test_a_learner_group_and_self_play_workers_are_not_combined():
    with pytest.raises(ValidationError, match="spec.learner.replicas above 1 cannot be combined"):
        make_run(selfPlayWorkers=2)
    assert make_run(selfPlayWorkers=2, learner={"replicas": 1}).spec.self_play_workers == 2
    for bad in (0, 65):
        with pytest.raises(ValidationError, match="learner.replicas"):
            make_run(learner={"replicas": bad})


def _decide(run, jobs, now):
    champion = Champion.model_validate({"metadata": {"name": "main", "namespace": "ns"}, "spec": {}})
    return lifecycle.decide(run, jobs, now, SETTINGS, champion=champion)


def _pod(job, index, ok, message):
    return ObservedPod(name=f"{job}-{index}-x", job=job, phase="Succeeded" if ok else "Failed",
                       exit_code=0 if ok else 1, reason="Completed" if ok else "Error", message=message)


def test_the_service_is_created_before_a_groups_job_and_a_failed_pod_retries_the_whole_group():
    run = make_run(phases=[{"name": "bootstrap"}, {"name": "evaluate"}], backoffLimit=1)
    first = _decide(run, [], T0)
    kinds = [a.manifest["kind"] for a in first.actions]
    assert kinds == ["ConfigMap", "Service", "Job"]
    run = run.model_copy(update={"status": first.status})
    # rank 1's pod failed: the Job failed as a whole (backoffLimit 0); ranks 0 and 2 were stopped
    failed = ObservedJob(name="tiny-0-bootstrap", index=0, attempt=0, state=JobState.FAILED, start_time=T0,
                         completion_time=T0, pods=(_pod("tiny-0-bootstrap", 1, False, "rank 1 died"),))
    retry = _decide(run, [failed], T0 + timedelta(seconds=5))
    jobs = [a.manifest for a in retry.actions if a.manifest["kind"] == "Job"]
    assert [j["metadata"]["name"] for j in jobs] == ["tiny-0-bootstrap-r1"]
    assert jobs[0]["spec"]["completions"] == 3 and env_of(jobs[0])["OURO_RENDEZVOUS_ID"] == "tiny-0-bootstrap-r1"
    assert retry.status.phases[0].attempts == 2 and "rank 1 died" in retry.status.phases[0].message


def test_a_groups_result_is_rank_0s_artifacts_once():
    artifact = {"name": "onnx", "uri": "s3://bucket/p/m.onnx", "sha256": "a" * 64, "size": 10}
    rank0 = json.dumps({"phase": "bootstrap", "metrics": {"steps": 40.0, "policyLoss": 0.5},
                        "artifacts": [artifact], "candidate": {"artifact": artifact}, "message": "bootstrap: done"})
    others = [json.dumps({"phase": "bootstrap", "metrics": {"steps": 40.0, "policyLoss": 0.5}, "artifacts": [],
                          "message": "bootstrap: done (learner rank 1 of 3; rank 0 wrote the artifacts)"})] * 2
    pods = tuple(_pod("j", i, True, m) for i, m in enumerate([rank0, *others]))
    job = ObservedJob(name="j", index=0, attempt=0, state=JobState.SUCCEEDED, pods=pods)
    merged = attempts.parse_result(job, PhaseName.BOOTSTRAP)
    assert [a.uri for a in merged.artifacts] == [artifact["uri"]]
    assert merged.candidate.artifact.sha256 == "a" * 64 and merged.metrics["steps"] == 40.0
