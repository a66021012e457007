"""Builders: deterministic names and the exact manifests a run's children get."""

from __future__ import annotations

import json
import re

import pytest

from ouroboros.operator.builders import manifests, names
from ouroboros.operator.resources import PhaseName, RunConfig, TrainingRun
from ouroboros.operator.settings import JobSettings

pytestmark = pytest.mark.unit

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
UID = "0b8e6a6e-1111-2222-3333-444455556666"


def make_run(name="tiny", **spec):
    body = {
        "metadata": {"name": name, "namespace": "ns", "uid": UID, "generation": 3},
        "spec": {"champion": "main", "phases": [{"name": "bootstrap"}, {"name": "self_play"}, {"name": "evaluate"}]},
    }
    body["spec"].update(spec)
    return TrainingRun.model_validate(body)


@pytest.mark.parametrize(
    ("run", "index", "phase", "attempt", "expected"),
    [
        ("tiny", 0, "bootstrap", 0, "tiny-0-bootstrap"),
        ("tiny", 2, "self_play", 0, "tiny-2-self-play"),
        ("tiny", 1, "hybrid", 2, "tiny-1-hybrid-r2"),
        ("a" * 40, 3, "continuous", 0, "a" * 40 + "-3-continuous"),
    ],
)
def test_job_names_are_readable_when_they_fit(run, index, phase, attempt, expected):
    assert names.job_name(run, index, phase, attempt) == expected


@pytest.mark.parametrize("length", [50, 60, 63, 64, 100, 253])
@pytest.mark.parametrize("phase", list(PhaseName))
def test_long_names_fit_63_chars_and_stay_distinct(length, phase):
    run = ("r" * (length - 1)) + "x"
    made = {names.job_name(run, i, phase, a) for i in range(3) for a in range(3)}
    made.add(names.job_name(run[:-1] + "y", 0, phase, 0))
    assert len(made) == 10
    for name in made:
        assert len(name) <= 63 and DNS_LABEL.match(name), name
    assert names.job_name(run, 1, phase, 2).endswith(f"-1-{names.phase_slug(phase)}-r2")
    assert names.job_name(run, 1, phase, 2) == names.job_name(run, 1, phase, 2)


def test_config_map_name_and_labels_fit():
    long = "x" * 200
    assert len(names.config_map_name(long)) <= 63
    labels = names.run_labels(long, UID)
    assert all(len(v) <= 63 for v in labels.values())
    assert names.run_selector(UID) == f"ouroboros.dev/run-uid={UID}"


def test_config_map_holds_the_run_config():
    run = make_run()
    cm = manifests.config_map(run)
    assert cm["metadata"]["name"] == "tiny-config" and cm["immutable"] is True
    assert cm["metadata"]["ownerReferences"][0]["uid"] == UID
    config = RunConfig.model_validate(json.loads(cm["data"]["run.json"]))
    assert config.run.name == "tiny" and config.run.generation == 3
    assert [p.name for p in config.phases] == [PhaseName.BOOTSTRAP, PhaseName.SELF_PLAY, PhaseName.EVALUATE]


def test_run_config_carries_the_initial_model_and_phase_options():
    run = make_run(initialModel={"registryVersion": "v7"},
                   phases=[{"name": "bootstrap", "teacher": "search", "teacherMoveMs": 30},
                           {"name": "self_play", "expertIteration": {"visits": 48}}])
    config = RunConfig.model_validate(json.loads(manifests.config_map(run)["data"]["run.json"]))
    assert config.initial_model.registry_version == "v7"
    assert config.phases[0].teacher == "search" and config.phases[0].teacher_move_ms == 30
    assert config.phases[1].expert_iteration.visits == 48
    assert "initialModel" not in json.loads(manifests.config_map(make_run())["data"]["run.json"])


def test_job_runs_the_phase_verb_with_the_mounted_config():
    settings = JobSettings(trainer_command=("/venv/bin/python", "-m", "ouroboros.trainer.commands.cli"))
    job = manifests.phase_job(make_run(), 1, 0, settings)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == [
        "/venv/bin/python", "-m", "ouroboros.trainer.commands.cli",
        "phase", "self_play", "--run-config", "/etc/ouroboros/run.json", "--result", "/dev/termination-log",
    ]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["volumeMounts"][0]["mountPath"] == "/etc/ouroboros"
    volume = job["spec"]["template"]["spec"]["volumes"][0]
    assert volume["configMap"]["name"] == "tiny-config"
    assert container["image"] == settings.default_image


def test_job_identity_labels_and_owner():
    job = manifests.phase_job(make_run(), 2, 1, JobSettings())
    meta = job["metadata"]
    assert meta["name"] == "tiny-2-evaluate-r1" and meta["namespace"] == "ns"
    assert meta["labels"][names.LABEL_PHASE_INDEX] == "2" and meta["labels"][names.LABEL_ATTEMPT] == "1"
    assert meta["labels"][names.LABEL_RUN_UID] == UID
    assert job["spec"]["template"]["metadata"]["labels"] == meta["labels"]
    owner = meta["ownerReferences"][0]
    assert owner == {
        "apiVersion": "ouroboros.dev/v1alpha1", "kind": "TrainingRun", "name": "tiny", "uid": UID,
        "controller": True, "blockOwnerDeletion": True,
    }
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert "ttlSecondsAfterFinished" not in job["spec"]
    assert meta["annotations"][names.ANNOTATION_GENERATION] == "3"


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ({}, {"cpu": "1", "memory": "2Gi"}),
        ({"cpu": "500m", "memory": "1Gi"}, {"cpu": "500m", "memory": "1Gi"}),
        ({"gpu": 2}, {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "2"}),
        ({"gpu": 1, "gpuResourceName": "amd.com/gpu"}, {"cpu": "1", "memory": "2Gi", "amd.com/gpu": "1"}),
    ],
)
def test_job_resources(resources, expected):
    job = manifests.phase_job(make_run(resources=resources), 0, 0, JobSettings())
    got = job["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert got == {"requests": expected, "limits": expected}


def test_job_scheduling_fields():
    run = make_run(
        nodeSelector={"pool": "gpu"},
        tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        priorityClassName="training",
        serviceAccountName="trainer",
        activeDeadlineSeconds=600,
        storage={"persistentVolumeClaim": "artifacts", "url": "file:///var/lib/ouroboros/artifacts/x",
                 "secretName": "creds"},
    )
    job = manifests.phase_job(run, 0, 0, JobSettings())
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "gpu"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["priorityClassName"] == "training" and pod["serviceAccountName"] == "trainer"
    assert job["spec"]["activeDeadlineSeconds"] == 600
    assert {"name": "artifacts", "persistentVolumeClaim": {"claimName": "artifacts"}} in pod["volumes"]
    assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "creds"}}]


def test_phase_deadline_overrides_the_run_deadline():
    run = make_run(activeDeadlineSeconds=600, phases=[{"name": "hybrid", "activeDeadlineSeconds": 60}])
    assert manifests.phase_job(run, 0, 0, JobSettings())["spec"]["activeDeadlineSeconds"] == 60
    plain = make_run(phases=[{"name": "hybrid"}])  # nothing hangs forever: the operator's default
    assert manifests.phase_job(plain, 0, 0, JobSettings())["spec"]["activeDeadlineSeconds"] == 86_400
    short = JobSettings(default_active_deadline_seconds=120)
    assert manifests.phase_job(plain, 0, 0, short)["spec"]["activeDeadlineSeconds"] == 120


@pytest.mark.parametrize(("phase", "indexed"), [("self_play", True), ("continuous", True), ("hybrid", False)])
def test_self_play_workers_make_an_indexed_job(phase, indexed):
    run = make_run(selfPlayWorkers=4, storage={"url": "s3://bucket/p"}, phases=[{"name": phase}])
    spec = manifests.phase_job(run, 0, 0, JobSettings())["spec"]
    if indexed:
        assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 4, 4)
    else:
        assert "completionMode" not in spec


def test_env_tells_the_trainer_who_it_is():
    env = manifests.phase_job(make_run(), 1, 2, JobSettings())["spec"]["template"]["spec"]["containers"][0]["env"]
    values = {e["name"]: e.get("value") for e in env}
    assert values["OURO_RUN_NAME"] == "tiny" and values["OURO_PHASE"] == "self_play"
    assert values["OURO_PHASE_INDEX"] == "1" and values["OURO_ATTEMPT"] == "2"


@pytest.mark.parametrize(("storage", "claim"), [
    ({}, "ouroboros-artifacts"),  # the default file:// store: the operator's default claim
    ({"persistentVolumeClaim": "mine"}, "mine"),
    ({"url": "s3://bucket/prefix"}, None),  # an object store needs no volume
])
def test_every_phase_mounts_the_store_it_shares(storage, claim):
    run = make_run(storage=storage, phases=[{"name": "hybrid"}])
    settings = JobSettings()
    pod = manifests.phase_job(run, 0, 0, settings)["spec"]["template"]["spec"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert manifests.storage_claim(run, settings) == claim and claims == ([claim] if claim else [])
    if claim:
        mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "artifacts")
        assert run.spec.storage.url == "file://" + mount["mountPath"] or run.spec.storage.url.startswith(
            "file://" + mount["mountPath"] + "/")


@pytest.mark.parametrize("storage, artifacts_volume", [
    ({}, {"name": "artifacts", "persistentVolumeClaim": {"claimName": "ouroboros-artifacts"}}),  # the shared default claim
    ({"persistentVolumeClaim": "shared", "url": "file:///var/lib/ouroboros/artifacts/x"},
     {"name": "artifacts", "persistentVolumeClaim": {"claimName": "shared"}}),
    ({"url": "s3://bucket/prefix"}, None),  # an object store needs no volume
])
def test_jobs_meet_pod_security_restricted_with_writable_volumes(storage, artifacts_volume):
    """What Pod Security "restricted" checks, and a writable place for every path the trainer writes."""
    settings = JobSettings()
    job = manifests.phase_job(make_run(storage=storage), 0, 0, settings)
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == settings.run_as_user == 10001  # Dockerfile.trainer's user
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    ctx = container["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False and ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["readOnlyRootFilesystem"] is True and ctx["runAsNonRoot"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert volumes["scratch"] == {"name": "scratch", "emptyDir": {}} and mounts["/scratch"] == "scratch"
    assert {"name": "TMPDIR", "value": "/scratch"} in container["env"]  # tempfile writes there
    assert volumes.get("artifacts") == artifacts_volume
    if artifacts_volume:
        assert mounts["/var/lib/ouroboros/artifacts"] == "artifacts"
