"""The few Kubernetes API calls the operator makes, over plain JSON.

The handlers work with dicts (what the builders return and the lifecycle
reads), so this client speaks JSON to the REST paths directly instead of
converting to and from the generated model classes. It borrows from the
official client only what is hard to get right: loading in-cluster or
kubeconfig credentials, TLS and the bearer-token header.
"""

from __future__ import annotations

import json
import socket
from datetime import datetime
from typing import Any
from urllib.parse import quote

import kubernetes.client
import kubernetes.config

from ouroboros.operator.builders import kueue
from ouroboros.operator.resources import GROUP, VERSION

TIMEOUT_SECONDS = 30
COMPONENT = "ouroboros-operator"

# apiVersion, kind -> (path prefix, plural) for the kinds the operator creates.
_KINDS = {
    ("v1", "ConfigMap"): ("/api/v1", "configmaps"),
    ("batch/v1", "Job"): ("/apis/batch/v1", "jobs"),
    ("v1", "Service"): ("/api/v1", "services"),
}


class ApiError(Exception):
    """A non-2xx answer from the API server."""

    def __init__(self, status: int, body: str, method: str = "", path: str = ""):
        self.status = status
        self.body = body
        try:
            self.reason = json.loads(body).get("reason", "")
            self.message = json.loads(body).get("message", body)
        except ValueError:
            self.reason, self.message = "", body
        super().__init__(f"{method} {path}: {status} {self.reason}: {self.message}")


def _runs_path(namespace: str | None) -> str:
    if namespace is None:
        return f"/apis/{GROUP}/{VERSION}/trainingruns"
    return f"/apis/{GROUP}/{VERSION}/namespaces/{quote(namespace)}/trainingruns"


def _champions_path(namespace: str | None) -> str:
    if namespace is None:
        return f"/apis/{GROUP}/{VERSION}/champions"
    return f"/apis/{GROUP}/{VERSION}/namespaces/{quote(namespace)}/champions"


class KubeClient:
    """Blocking JSON calls to the API server (run them from worker threads)."""

    def __init__(self, api_client: kubernetes.client.ApiClient):
        self.api = api_client
        self.instance = socket.gethostname()

    @classmethod
    def from_environment(cls, pool_size: int = 32) -> KubeClient:
        """In-cluster credentials if present, else $KUBECONFIG / ~/.kube/config."""
        config = kubernetes.client.Configuration()
        try:
            kubernetes.config.load_incluster_config(client_configuration=config)
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config(client_configuration=config)
        config.connection_pool_maxsize = pool_size
        return cls(kubernetes.client.ApiClient(config))

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """One call; the decoded JSON answer, or ApiError."""
        method_, url, headers, body_, _ = self.api.param_serialize(
            method,
            path,
            query_params=list((query or {}).items()),
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(method_, url, header_params=headers, body=body_, _request_timeout=TIMEOUT_SECONDS)
        data = response.read()
        if not 200 <= response.status < 300:
            raise ApiError(response.status, data.decode(errors="replace") if data else "", method, path)
        return json.loads(data) if data else {}

    # -- TrainingRuns ------------------------------------------------------

    def get_run(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The run, or None if it does not exist."""
        try:
            return self.request("GET", f"{_runs_path(namespace)}/{quote(name)}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list_runs(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """All runs in a namespace, or in the cluster."""
        return self.request("GET", _runs_path(namespace)).get("items", [])

    def replace_run_status(self, run: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        """PUT the whole status; 409 if the run changed since it was read (optimistic concurrency)."""
        meta = run["metadata"]
        body = {**run, "status": status}
        return self.request("PUT", f"{_runs_path(meta['namespace'])}/{quote(meta['name'])}/status", body)

    def delete_run(self, namespace: str, name: str, uid: str) -> None:
        """Delete the run (children go by ownerReference), only if it is still the same object."""
        body = {"propagationPolicy": "Background", "preconditions": {"uid": uid}}
        try:
            self.request("DELETE", f"{_runs_path(namespace)}/{quote(name)}", body)
        except ApiError as exc:
            if exc.status not in (404, 409):
                raise

    # -- Champions ---------------------------------------------------------

    def get_champion(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Champion, or None if it does not exist."""
        try:
            return self.request("GET", f"{_champions_path(namespace)}/{quote(name)}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list_champions(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """All Champions in a namespace, or in the cluster."""
        return self.request("GET", _champions_path(namespace)).get("items", [])

    def replace_champion_status(self, champion: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        """PUT the whole status; 409 if the Champion changed since it was read."""
        meta = champion["metadata"]
        body = {**champion, "status": status}
        return self.request("PUT", f"{_champions_path(meta['namespace'])}/{quote(meta['name'])}/status", body)

    # -- children ----------------------------------------------------------

    def list_jobs(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """Jobs matching a label selector."""
        path = f"/apis/batch/v1/namespaces/{quote(namespace)}/jobs"
        return self.request("GET", path, query={"labelSelector": selector}).get("items", [])

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """Pods matching a label selector."""
        path = f"/api/v1/namespaces/{quote(namespace)}/pods"
        return self.request("GET", path, query={"labelSelector": selector}).get("items", [])

    def get_pvc(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A PersistentVolumeClaim, or None if there is none by that name."""
        try:
            return self.request("GET", f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list_events(self, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
        """core/v1 Events about one object (e.g. a Job's FailedCreate)."""
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        body = self.request("GET", f"/api/v1/namespaces/{namespace}/events", query={"fieldSelector": selector})
        return (body or {}).get("items", [])

    def list_workloads(self, namespace: str, job_uids: list[str]) -> list[dict[str, Any]]:
        """Kueue Workloads (kueue.x-k8s.io/v1beta2) of the Jobs with these uids; [] when Kueue's API
        is not installed (404) or the operator may not read it (403), so a run works without Kueue."""
        if not job_uids:
            return []
        path = f"/apis/{kueue.WORKLOAD_GROUP}/{kueue.WORKLOAD_VERSION}/namespaces/{quote(namespace)}/workloads"
        selector = f"{kueue.JOB_UID_LABEL} in ({','.join(sorted(job_uids))})"
        try:
            return self.request("GET", path, query={"labelSelector": selector}).get("items", [])
        except ApiError as exc:
            if exc.status in (403, 404):
                return []
            raise

    def set_workload_active(self, namespace: str, name: str, active: bool, annotation: str) -> None:
        """Activate or deactivate a Kueue Workload; ``annotation`` is set while the operator holds it
        inactive and removed when it reactivates it."""
        path = f"/apis/{kueue.WORKLOAD_GROUP}/{kueue.WORKLOAD_VERSION}/namespaces/{quote(namespace)}/workloads/{quote(name)}"
        body = {"metadata": {"annotations": {annotation: None if active else "true"}}, "spec": {"active": active}}
        self.request("PATCH", path, body, content_type="application/merge-patch+json")

    def create(self, manifest: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create the object; (object, True) if created, (existing object, False) if it already existed."""
        prefix, plural = _KINDS[(manifest["apiVersion"], manifest["kind"])]
        meta = manifest["metadata"]
        collection = f"{prefix}/namespaces/{quote(meta['namespace'])}/{plural}"
        try:
            return self.request("POST", collection, manifest), True
        except ApiError as exc:
            if exc.status != 409 or exc.reason != "AlreadyExists":
                raise
        return self.request("GET", f"{collection}/{quote(meta['name'])}"), False

    def set_job_suspended(self, namespace: str, name: str, suspend: bool) -> None:
        """Suspend (the Job controller deletes its pods) or resume a Job."""
        path = f"/apis/batch/v1/namespaces/{quote(namespace)}/jobs/{quote(name)}"
        self.request("PATCH", path, {"spec": {"suspend": suspend}}, content_type="application/merge-patch+json")

    def post_event(self, run: dict[str, Any], type_: str, reason: str, message: str, now: datetime) -> None:
        """A core/v1 Event about the run (what `kubectl describe` and `kubectl events` show)."""
        meta = run["metadata"]
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": run.get("apiVersion", f"{GROUP}/{VERSION}"),
                "kind": run.get("kind", "TrainingRun"),
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid", ""),
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": COMPONENT},
            "reportingComponent": f"{GROUP}/operator",
            "reportingInstance": self.instance[:128],
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        self.request("POST", f"/api/v1/namespaces/{quote(meta['namespace'])}/events", body)
