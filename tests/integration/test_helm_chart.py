"""The Helm chart, rendered and checked by the real helm (no cluster needed).

`helm lint --strict`; `helm template` with the default and non-default values;
wrong values refused by values.schema.json with the key named; the CRD
templates equal to the generated CRDs; manifests/operator/ equal to what the
chart renders; every container hardened as Pod Security "restricted" wants.
Integration-marked because helm is built from its Go module (once, cached).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import yaml

from ouroboros.operator import crdgen, resources

REPO = crdgen.REPO_ROOT
CHART = REPO / "charts" / "ouroboros"
pytestmark = pytest.mark.integration

VALUE_SETS = {
    "default": [],
    "namespaced": ["--set", "watch.namespaces={team-a,team-b}"],
    "everything-on": [
        "--set", "metrics.serviceMonitor.enabled=true", "--set", "podDisruptionBudget.enabled=true",
        "--set", "networkPolicy.enabled=true", "--set", "createNamespace=true",
        "--set", "image.digest=sha256:" + "a" * 64, "--set", "trainer.command={python,-m,ouroboros.trainer}",
    ],
    "minimal": ["--set", "crds.enabled=false", "--set", "rbac.create=false", "--set", "metrics.enabled=false",
                "--set", "serviceAccount.create=false", "--set", "tests.enabled=false"],
}


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict], kind: str) -> dict:
    (found,) = by_kind(objects, kind)
    return found


def env_of(deployment: dict) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_lint_is_clean(helm):
    out = helm("lint", "--strict", str(CHART)).stdout
    assert "1 chart(s) linted, 0 chart(s) failed" in out


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_every_pod_meets_pod_security_restricted(helm, values):
    """What the restricted profile checks, for the operator and the test hook, whatever the values."""
    objects = helm.template(*values)
    pods = [(o["metadata"]["name"], o["spec"]["template"]["spec"]) for o in by_kind(objects, "Deployment")]
    pods += [(o["metadata"]["name"], o["spec"]) for o in by_kind(objects, "Pod")]
    assert pods
    for name, pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == 10001, name  # the images' `ouro` user
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in pod["containers"]:
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False and ctx["readOnlyRootFilesystem"] is True, name
            assert ctx["capabilities"] == {"drop": ["ALL"]} and ctx["runAsNonRoot"] is True, name


def test_the_image_user_and_run_as_user_agree():
    for dockerfile in ("Dockerfile.operator", "Dockerfile.trainer"):
        text = (REPO / dockerfile).read_text()
        assert "--uid 10001" in text and "\nUSER 10001" in text, dockerfile
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == 10001


def test_default_install_is_cluster_wide_with_least_privilege(helm):
    objects = helm.template()
    role = next(o for o in by_kind(objects, "ClusterRole") if o["metadata"]["name"] == "r-ouroboros-operator")
    grants = {(g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert grants[("batch", "jobs")] == {"get", "list", "watch", "create", "patch", "delete"}
    assert grants[("", "pods")] == {"get", "list", "watch"}  # results come from termination messages
    assert ("", "secrets") not in grants and not any("*" in verbs for verbs in grants.values())
    assert not any(r == "*" or g == "*" for g, r in grants)
    binding = one(objects, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "r-ouroboros-operator", "namespace": "ouro"}]
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert env_of(deployment)["OURO_NAMESPACES"] == ""
    # leader election: a Lease in the release namespace, get/update only on that one name
    lease_role = next(o for o in by_kind(objects, "Role") if o["metadata"]["name"].endswith("-leader-election"))
    assert lease_role["metadata"]["namespace"] == "ouro"
    assert lease_role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["r-ouroboros-operator"],
         "verbs": ["get", "update"]},
    ]


def test_leader_election_decides_the_strategy_and_the_replicas(helm):
    deployment = one(helm.template("--set", "replicaCount=2"), "Deployment")
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate" and deployment["spec"]["replicas"] == 2
    env = env_of(deployment)
    assert env["OURO_LEADER_ELECTION"] == "true" and env["OURO_LEASE_NAMESPACE"] == "ouro"
    assert env["OURO_LEASE_NAME"] == "r-ouroboros-operator"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    pod_name = next(e for e in container["env"] if e["name"] == "OURO_POD_NAME")
    assert pod_name["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    alone = helm.template("--set", "leaderElection.enabled=false")
    assert one(alone, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert not [r for r in by_kind(alone, "Role") if "leader" in r["metadata"]["name"]]
    refused = helm("template", "r", str(CHART), "--set", "leaderElection.enabled=false", "--set", "replicaCount=2",
                   check=False)
    assert refused.returncode != 0
    assert "replicaCount: more than 1 replica needs leaderElection.enabled=true" in refused.stderr


def test_namespaced_mode_grants_roles_only_in_the_watched_namespaces(helm):
    objects = helm.template(*VALUE_SETS["namespaced"])
    roles = by_kind(objects, "Role")
    operator_roles = [r for r in roles if not r["metadata"]["name"].endswith(("-test", "-leader-election"))]
    assert sorted(r["metadata"]["namespace"] for r in operator_roles) == ["team-a", "team-b"]
    assert sorted(b["metadata"]["namespace"] for b in by_kind(objects, "RoleBinding")
                  if not b["metadata"]["name"].endswith(("-test", "-leader-election"))) == ["team-a", "team-b"]
    assert by_kind(objects, "ClusterRoleBinding") == []
    # the only ClusterRoles left are the aggregated ones for people, bound by Kubernetes' own roles
    for cluster_role in by_kind(objects, "ClusterRole"):
        labels = cluster_role["metadata"]["labels"]
        assert any(k.startswith("rbac.authorization.k8s.io/aggregate-to-") for k in labels), cluster_role
    assert env_of(one(objects, "Deployment"))["OURO_NAMESPACES"] == "team-a,team-b"


def test_aggregated_roles_let_viewers_read_and_editors_write(helm):
    roles = {r["metadata"]["name"]: r for r in by_kind(helm.template(), "ClusterRole")}
    view, edit = roles["r-ouroboros-view"], roles["r-ouroboros-edit"]
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert set(view["rules"][0]["verbs"]) == {"get", "list", "watch"}
    assert {"create", "update", "patch", "delete"} <= set(edit["rules"][0]["verbs"])
    assert not any(r.endswith("/status") for r in edit["rules"][0]["resources"])  # status is the operator's
    off = helm.template("--set", "rbac.aggregateToDefaultRoles=false")
    assert {r["metadata"]["name"] for r in by_kind(off, "ClusterRole")} == {"r-ouroboros-operator"}


def test_settings_reach_the_operator_environment(helm):
    objects = helm.template(*VALUE_SETS["everything-on"], "--set", "metrics.bindAddress=127.0.0.1",
                            "--set", "health.port=9000", "--set", "operator.resyncSeconds=5")
    deployment = one(objects, "Deployment")
    env = env_of(deployment)
    assert env["OURO_METRICS_ADDRESS"] == "127.0.0.1" and env["OURO_METRICS_PORT"] == "8080"
    assert env["OURO_HEALTH_PORT"] == "9000" and env["OURO_RESYNC_SECONDS"] == "5"
    assert env["OURO_TRAINER_COMMAND"] == "python -m ouroboros.trainer"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/ouroboros/operator@sha256:" + "a" * 64
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"metrics": 8080, "health": 9000}
    assert one(objects, "ServiceMonitor")["spec"]["endpoints"][0]["port"] == "metrics"
    assert one(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    policy = one(objects, "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert one(objects, "Namespace")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    minimal = helm.template(*VALUE_SETS["minimal"])
    assert env_of(one(minimal, "Deployment"))["OURO_METRICS_PORT"] == "0"
    assert by_kind(minimal, "Service") == [] and by_kind(minimal, "CustomResourceDefinition") == []
    assert one(minimal, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "default"


def test_crd_templates_are_the_generated_crds(helm):
    """The chart's CRDs are crdgen's output (plus labels and the keep policy), so they cannot drift."""
    rendered = {c["metadata"]["name"]: c for c in by_kind(helm.template(), "CustomResourceDefinition")}
    assert set(rendered) == {d.name for d in resources.DEFINITIONS}
    for definition in resources.DEFINITIONS:
        crd = rendered[definition.name]
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        assert crd["spec"] == crdgen.crd(definition)["spec"]
    loose = by_kind(helm.template("--set", "crds.keep=false"), "CustomResourceDefinition")
    assert all("annotations" not in c["metadata"] for c in loose)
    assert not (CHART / "crds").exists()  # helm would install those once and never upgrade them


def test_plain_manifests_are_what_the_chart_renders(helm):
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "render_manifests.py"), "--check",
                             "--helm", str(helm.binary)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all((REPO / "manifests/operator/ouroboros.yaml").read_text()) if d]
    assert docs[0]["kind"] == "Namespace"  # kubectl applies in file order: the namespace first
    assert len(list((REPO / "manifests/operator").glob("*.yaml"))) == 1


def test_dashboards_rules_and_extra_objects_are_wrapped(helm, tmp_path):
    """Whatever files/ holds becomes ConfigMaps and a PrometheusRule; extraObjects go through tpl."""
    chart = tmp_path / "ouroboros"
    shutil.copytree(CHART, chart)
    (chart / "files" / "dashboards").mkdir(exist_ok=True)
    (chart / "files" / "dashboards" / "zz-test.json").write_text(json.dumps({"title": "T", "panels": []}))
    groups = {"groups": [{"name": "zz", "rules": [{"alert": "ZZ", "expr": "up == 0"}]}]}
    rules_file = chart / "files" / "prometheus-rules.yaml"
    if not rules_file.exists():
        rules_file.write_text(yaml.safe_dump(groups))
    extra = tmp_path / "extra.yaml"
    extra.write_text(yaml.safe_dump({"extraObjects": [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "{{ .Release.Name }}-extra"}},
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: '{{ .Release.Name }}-s'\n",
    ]}))
    objects = helm.template("--set", "grafana.dashboards.enabled=true", "--set", "metrics.prometheusRule.enabled=true",
                            "-f", str(extra), chart=chart)
    maps = {m["metadata"]["name"]: m for m in by_kind(objects, "ConfigMap")}
    dashboard = maps["r-ouroboros-dashboard-zz-test"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["zz-test.json"])["title"] == "T"
    rule = one(objects, "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(rules_file.read_text())["groups"]
    assert "r-extra" in maps and one(objects, "Secret")["metadata"]["name"] == "r-s"


WRONG_VALUES = [
    # (--set, the key helm names, the reason it gives)
    ("replicaCount=6", "/replicaCount", "maximum: got 6, want 5"),
    ("replicaCount=-1", "/replicaCount", "minimum: got -1, want 0"),
    ("leaderElection.leaseDurationSeconds=1", "/leaderElection/leaseDurationSeconds", "minimum: got 1, want 5"),
    ("image.pullPolicy=Sometimes", "/image/pullPolicy", "value must be one of 'Always', 'IfNotPresent', 'Never'"),
    ("metrics.port=70000", "/metrics/port", "maximum: got 70,000, want 65,535"),
    ("health.port=0", "/health/port", "minimum: got 0, want 1"),
    ("watch.namespaces={Team_A}", "/watch/namespaces/0", "'Team_A' does not match pattern"),
    ("crds.enabled=yes", "/crds/enabled", "got string, want boolean"),
    ("securityContext.readOnlyRootFilesystem=false", "/securityContext/readOnlyRootFilesystem", "value must be true"),
    ("podSecurityContext.runAsNonRoot=false", "/podSecurityContext/runAsNonRoot", "value must be true"),
    ("image.digest=sha256:abc", "/image/digest", "'sha256:abc' does not match pattern"),
    ("metrics.serviceMonitor.interval=thirty", "/metrics/serviceMonitor/interval", "'thirty' does not match pattern"),
    ("metrics.bindAddress=localhost", "/metrics/bindAddress", "'localhost' does not match pattern"),
    ("operator.workers=0", "/operator/workers", "minimum: got 0, want 1"),
    ("metrics.service.type=External", "/metrics/service/type", "value must be one of 'ClusterIP', 'NodePort', 'LoadBalancer'"),
    ("tests.timeoutSeconds=5", "/tests/timeoutSeconds", "minimum: got 5, want 30"),
    ("replicas=3", "at ''", "additional properties 'replicas' not allowed"),
    ("metrics.servicemonitor.enabled=true", "/metrics", "additional properties 'servicemonitor' not allowed"),
]


@pytest.mark.parametrize(("value", "key", "reason"), WRONG_VALUES, ids=[v[0] for v in WRONG_VALUES])
def test_a_wrong_value_fails_with_the_key_named(helm, value, key, reason):
    result = helm("template", "r", str(CHART), "--set", value, check=False)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert key in result.stderr and reason in result.stderr, result.stderr


def test_the_values_reference_is_current():
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "values_reference.py"), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
