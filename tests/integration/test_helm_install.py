"""The chart and the plain manifests on the real control plane.

`helm install` into a namespace that enforces Pod Security "restricted"; the
operator then runs with a token of the chart's ServiceAccount (so with exactly
the chart's RBAC, nothing more) and reconciles a TrainingRun to success, its
phase Jobs admitted by Pod Security; `helm test` runs the chart's hook (a tiny
TrainingRun that must succeed); `helm upgrade` changes a CRD; `helm uninstall`
leaves nothing of the release behind but the CRDs it is told to keep.

The operator Deployment is installed with replicaCount=0 and without `--wait`:
there is no container runtime (nor Deployment controller) here, so the test
runs the operator as a local process instead of the image
(operator_support.OperatorProcess), and the node agent runs the phase pods and
the test hook's pod. Everything else is the real API server's doing.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import helmtool
import pytest
import yaml

from .operator_support import (
    ElectedOperator,
    apply,
    champion,
    get,
    items,
    run_status,
    tiny_run,
    wait_for,
)

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
CRD_NAMES = ("champions.ouroboros.dev", "trainingruns.ouroboros.dev", "trainingschedules.ouroboros.dev")
RESTRICTED = "pod-security.kubernetes.io/enforce=restricted"


def adopt_crds(cluster, release: str, namespace: str) -> None:
    """Let the release take over CRDs that other tests installed with kubectl (helm's adoption rule)."""
    for name in CRD_NAMES:
        if cluster.kubectl("get", "crd", name, check=False).returncode == 0:
            cluster.kubectl("annotate", "--overwrite", "crd", name, f"meta.helm.sh/release-name={release}",
                            f"meta.helm.sh/release-namespace={namespace}")
            cluster.kubectl("label", "--overwrite", "crd", name, "app.kubernetes.io/managed-by=Helm")


def service_account_kubeconfig(cluster, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig that authenticates as `namespace/account` with a fresh bound token."""
    token = cluster.kubectl("create", "token", account, "-n", namespace, "--duration=2h").stdout.strip()
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": cluster.server, "certificate-authority": str(cluster.ca_file)}}],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "sa", "namespace": namespace}}],
        "current-context": "c",
    }))
    return path


def release_objects(cluster, release: str, namespace: str) -> list[str]:
    """Every object labelled as the release's, namespaced (in `namespace`) or cluster-wide."""
    selector = f"app.kubernetes.io/instance={release}"
    kinds = "serviceaccounts,services,deployments,configmaps,secrets,pods,roles,rolebindings,poddisruptionbudgets"
    found = cluster.kubectl("get", kinds, "-n", namespace, "-l", selector, "-o", "name").stdout.split()
    found += cluster.kubectl("get", "clusterroles,clusterrolebindings,namespaces", "-l", selector,
                             "-o", "name").stdout.split()
    return found


@pytest.fixture
def restricted_namespace(kube_cluster):
    name = f"h-{uuid.uuid4().hex[:10]}"
    kube_cluster.kubectl("create", "namespace", name)
    kube_cluster.kubectl("label", "namespace", name, RESTRICTED)
    yield name
    kube_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_install_reconcile_test_upgrade_uninstall(kube_cluster, node_agent, helm, restricted_namespace, tmp_path):
    cluster, ns = kube_cluster, restricted_namespace
    release = f"rel-{uuid.uuid4().hex[:6]}"
    kube_helm = helmtool.Helm(helm.binary, helm.home, env=cluster.env)
    adopt_crds(cluster, release, ns)
    installed = kube_helm("install", release, str(helmtool.CHART), "-n", ns, "--set", "replicaCount=0").stdout
    assert f"helm test {release} -n {ns}" in installed  # NOTES.txt: what to do next
    assert "replicaCount is 0: nothing reconciles" in installed
    for name in CRD_NAMES:
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
        assert json.loads(cluster.kubectl("get", "crd", name, "-o", "json").stdout)["metadata"]["annotations"][
            "meta.helm.sh/release-name"] == release
    account = f"{release}-ouroboros-operator"
    assert cluster.kubectl("auth", "can-i", "create", "jobs.batch", "-n", ns,
                           f"--as=system:serviceaccount:{ns}:{account}").stdout.strip() == "yes"
    assert cluster.kubectl("auth", "can-i", "get", "secrets", "-n", ns, f"--as=system:serviceaccount:{ns}:{account}",
                           check=False).stdout.strip() == "no"

    # People: whoever has the built-in edit role in a namespace may create runs there, view may read them.
    cluster.kubectl("create", "rolebinding", "alice-edit", "--clusterrole=edit", "--user=alice", "-n", ns)
    cluster.kubectl("create", "rolebinding", "bob-view", "--clusterrole=view", "--user=bob", "-n", ns)

    def can(user: str, verb: str, resource: str, *extra: str) -> bool:
        out = cluster.kubectl("auth", "can-i", verb, resource, "-n", ns, f"--as={user}", *extra, check=False)
        return out.stdout.strip() == "yes"

    wait_for(lambda: can("alice", "create", "trainingruns.ouroboros.dev"), timeout=60,
             what="the aggregation controller to add the chart's rules to edit")
    assert can("alice", "patch", "champions.ouroboros.dev") and can("alice", "delete", "trainingschedules.ouroboros.dev")
    assert not can("alice", "update", "trainingruns.ouroboros.dev", "--subresource=status")  # the operator's
    wait_for(lambda: can("bob", "list", "trainingruns.ouroboros.dev"), timeout=60, what="view to include the runs")
    assert not can("bob", "create", "trainingruns.ouroboros.dev")

    # The operator as the chart's ServiceAccount: only the chart's RBAC stands behind it.
    kubeconfig = service_account_kubeconfig(cluster, ns, account, tmp_path / "operator.kubeconfig")
    operator = ElectedOperator(cluster, ns, tmp_path, kubeconfig=kubeconfig, identity="chart-operator",
                               lease_name=account).start()  # the Lease the chart's Role names
    try:
        apply(cluster, ns, champion(policy={"postPromotionCheck": {"games": 0}}))  # runs wait without one
        apply(cluster, ns, tiny_run("via-chart", phases=("bootstrap", "evaluate")))
        cluster.kubectl("wait", "--for=condition=Succeeded", "trainingrun/via-chart", "-n", ns, "--timeout=300s")
        assert run_status(cluster, ns, "via-chart")["phase"] == "Succeeded"
        pod = items(cluster, "pods", ns, "batch.kubernetes.io/job-name=via-chart-0-bootstrap")[0]
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True  # admitted under "restricted"
        assert "Forbidden" not in operator.log() and "403" not in operator.log()
        assert get(cluster, "lease", ns, account)["spec"]["holderIdentity"] == "chart-operator"

        # helm test: the chart's hook pod creates a tiny run and waits for it (the node agent runs it)
        result = kube_helm("test", release, "-n", ns, "--timeout=10m", check=False, timeout=660)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"TEST SUITE:     {release}-ouroboros-test" in result.stdout
        assert "Succeeded" in result.stdout
    finally:
        operator.stop()

    # helm upgrade changes a CRD: a chart whose TrainingRun CRD has one more printer column
    chart = tmp_path / "chart"
    shutil.copytree(helmtool.CHART, chart)
    crd_file = chart / "files" / "crds" / "ouroboros.dev_trainingruns.yaml"
    crd = yaml.safe_load(crd_file.read_text())
    crd["spec"]["versions"][0]["additionalPrinterColumns"].append(
        {"name": "Upgraded", "type": "string", "jsonPath": ".spec.champion", "description": "added by the upgrade"})
    crd_file.write_text(yaml.safe_dump(crd))
    kube_helm("upgrade", release, str(chart), "-n", ns, "--set", "replicaCount=0")

    def columns() -> list[str]:
        live = json.loads(cluster.kubectl("get", "crd", "trainingruns.ouroboros.dev", "-o", "json").stdout)
        return [c["name"] for c in live["spec"]["versions"][0]["additionalPrinterColumns"]]

    assert "Upgraded" in columns()
    kube_helm("upgrade", release, str(helmtool.CHART), "-n", ns, "--set", "replicaCount=0")
    assert "Upgraded" not in columns()

    # helm uninstall: nothing of the release is left, except the CRDs it keeps (and so every run)
    assert release_objects(cluster, release, ns)
    kube_helm("uninstall", release, "-n", ns, "--wait", "--timeout=2m")
    wait_for(lambda: not release_objects(cluster, release, ns), timeout=60, what="the release's objects to go")
    for name in CRD_NAMES:
        assert cluster.kubectl("get", "crd", name, check=False).returncode == 0, f"{name} was not kept"
    assert kube_helm("list", "-n", ns, "-q").stdout.strip() == ""


def test_plain_manifests_apply_on_the_first_try(kube_cluster, tmp_path):
    """`kubectl apply -f manifests/operator/` creates the namespace before what lives in it.

    The committed file, with its namespace renamed so the test starts from a
    namespace that does not exist (as on a fresh cluster).
    """
    cluster = kube_cluster
    fresh = f"ouro-fresh-{uuid.uuid4().hex[:6]}"
    text = (REPO / "manifests" / "operator" / "ouroboros.yaml").read_text()
    assert text.count("ouroboros-system") >= 5
    (tmp_path / "operator").mkdir()
    (tmp_path / "operator" / "ouroboros.yaml").write_text(text.replace("ouroboros-system", fresh))
    result = cluster.kubectl("apply", "-f", str(tmp_path / "operator"), check=False)
    try:
        assert result.returncode == 0, result.stderr
        assert f"namespace/{fresh} created" in result.stdout
        assert "deployment.apps/ouroboros-operator created" in result.stdout
        labels = json.loads(cluster.kubectl("get", "namespace", fresh, "-o", "json").stdout)["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    finally:  # the cluster-wide roles stay: other tests apply the same ones
        cluster.kubectl("delete", "namespace", fresh, "--wait=false", check=False)


def test_phase_pods_are_admitted_by_pod_security_restricted(kube_cluster, restricted_namespace):
    """The builders' pod template passes the API server's PodSecurity admission; without its
    securityContext the same pod is refused (so the check is real)."""
    from ouroboros.operator.builders import manifests
    from ouroboros.operator.resources import TrainingRun
    from ouroboros.operator.settings import JobSettings

    for storage in ({}, {"persistentVolumeClaim": "shared", "url": "file:///var/lib/ouroboros/artifacts/r"}):
        body = tiny_run("r", phases=("self_play",), storage=storage)
        body["metadata"].update(namespace=restricted_namespace, uid="0000", generation=1)
        job = manifests.phase_job(TrainingRun.model_validate(body), 0, 0, JobSettings())
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe", "namespace": restricted_namespace},
               "spec": job["spec"]["template"]["spec"]}
        admitted = kube_cluster.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False)
        assert admitted.returncode == 0, admitted.stderr
        del pod["spec"]["securityContext"], pod["spec"]["containers"][0]["securityContext"]
        refused = kube_cluster.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False)
        assert refused.returncode != 0 and 'violates PodSecurity "restricted:latest"' in refused.stderr
