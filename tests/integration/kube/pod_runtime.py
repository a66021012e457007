"""Turn a pod's spec into a local process: argv, environment, files.

There are no containers here, so the node agent runs a pod's single container
`command` + `args` directly. Paths the container would see (volume mounts and
its termination message file) do not exist on this machine; each is
materialised under the pod's own directory and every mention of the
container path in the command, args, env values and ConfigMap file contents
is rewritten to the local path. The termination message file is also named
in the env var OURO_TERMINATION_LOG.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .api import ApiError, KubeApi

TERMINATION_LOG_ENV = "OURO_TERMINATION_LOG"
DEFAULT_TERMINATION_PATH = "/dev/termination-log"


class NotReady(Exception):
    """A ConfigMap or Secret the pod needs does not exist yet; kubelet would wait too."""


class Unsupported(Exception):
    """The pod uses something the node agent cannot run; the pod is failed with this message."""


@dataclass(frozen=True)
class LocalContainer:
    """Everything needed to run (and rerun) a pod's container as a local process."""

    name: str
    image: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log_path: Path
    """stdout and stderr of every run of the container, appended."""
    termination_log: Path
    """Local stand-in for the container's terminationMessagePath."""
    restart_policy: str
    """Never, OnFailure or Always, from the pod spec."""
    fallback_to_logs: bool
    """terminationMessagePolicy FallbackToLogsOnError."""


def prepare(pod: dict, api: KubeApi, pod_dir: Path, claims_dir: Path, base_env: Mapping[str, str]) -> LocalContainer:
    """Materialise the pod's volumes under `pod_dir` and build its local process.

    PersistentVolumeClaims map to `claims_dir/<namespace>/<claim>`, shared by
    every pod that mounts the claim, so phases can hand files to each other.
    Raises NotReady or Unsupported.
    """
    spec = pod["spec"]
    namespace = pod["metadata"]["namespace"]
    containers = spec.get("containers", [])
    if len(containers) != 1 or spec.get("initContainers"):
        raise Unsupported("the test node agent runs pods with exactly one container and no init containers")
    container = containers[0]
    if not container.get("command"):
        raise Unsupported(f"container {container['name']!r} has no command; the test node agent cannot read image entrypoints")

    pod_dir.mkdir(parents=True, exist_ok=True)
    volume_dirs = {
        volume["name"]: _volume_dir(volume, namespace, pod_dir / "volumes", claims_dir)
        for volume in spec.get("volumes", [])
    }
    termination_log = pod_dir / "termination-log"
    termination_log.touch()
    paths = {container.get("terminationMessagePath", DEFAULT_TERMINATION_PATH): str(termination_log)}
    for mount in container.get("volumeMounts", []):
        if mount["name"] not in volume_dirs:
            raise Unsupported(f"volumeMount {mount['name']!r} names no volume")
        paths[mount["mountPath"]] = str(volume_dirs[mount["name"]] / mount.get("subPath", ""))
    rewrite = _path_rewriter(paths)

    for volume in spec.get("volumes", []):
        _fill_volume(volume, namespace, volume_dirs[volume["name"]], api, rewrite)

    env = dict(base_env)
    container_env = _container_env(pod, container, api)
    env.update({key: rewrite(value) for key, value in container_env.items()})
    env[TERMINATION_LOG_ENV] = str(termination_log)
    argv = [rewrite(_expand(arg, container_env)) for arg in container["command"] + container.get("args", [])]
    cwd = Path(rewrite(container["workingDir"])) if container.get("workingDir") else pod_dir / "work"
    cwd.mkdir(parents=True, exist_ok=True)
    return LocalContainer(
        name=container["name"],
        image=container.get("image", ""),
        argv=argv,
        env=env,
        cwd=cwd,
        log_path=pod_dir / "container.log",
        termination_log=termination_log,
        restart_policy=spec.get("restartPolicy", "Always"),
        fallback_to_logs=container.get("terminationMessagePolicy") == "FallbackToLogsOnError",
    )


def _path_rewriter(paths: dict[str, str]):
    """A function replacing each container path (as a whole path, not a prefix of a name) by its local path."""
    if not paths:
        return lambda text: text
    alternatives = "|".join(re.escape(path) for path in sorted(paths, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w.-])({alternatives})(?![\w.-])")
    return lambda text: pattern.sub(lambda match: paths[match.group(1)], text)


_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def _expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in command and args; unknown references stay as written."""
    return _VAR_REF.sub(lambda match: env.get(match.group(1), match.group(0)), text)


def _volume_dir(volume: dict, namespace: str, volumes_dir: Path, claims_dir: Path) -> Path:
    if "hostPath" in volume:
        return Path(volume["hostPath"]["path"])
    if "persistentVolumeClaim" in volume:
        path = claims_dir / namespace / volume["persistentVolumeClaim"]["claimName"]
    else:
        path = volumes_dir / volume["name"]
    path.mkdir(parents=True, exist_ok=True)
    return path


def _fill_volume(volume: dict, namespace: str, directory: Path, api: KubeApi, rewrite) -> None:
    """Write a ConfigMap's or Secret's keys as files; other volume kinds start empty."""
    if "configMap" in volume:
        source = volume["configMap"]
        obj = _read(api, namespace, "configmaps", source["name"], source.get("optional", False))
        files = {key: rewrite(value).encode() for key, value in obj.get("data", {}).items()}
        files.update({key: base64.b64decode(value) for key, value in obj.get("binaryData", {}).items()})
    elif "secret" in volume:
        source = volume["secret"]
        obj = _read(api, namespace, "secrets", source["secretName"], source.get("optional", False))
        files = {key: base64.b64decode(value) for key, value in obj.get("data", {}).items()}
    else:
        return
    items = source.get("items")
    selected = {item["path"]: files[item["key"]] for item in items if item["key"] in files} if items else files
    for relative, content in selected.items():
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def _read(api: KubeApi, namespace: str, plural: str, name: str, optional: bool) -> dict:
    try:
        return api.get(f"/api/v1/namespaces/{namespace}/{plural}/{name}")
    except ApiError as err:
        if err.status == 404 and optional:
            return {}
        if err.status == 404:
            raise NotReady(f"{plural[:-1]} {namespace}/{name} not found") from None
        raise


def _container_env(pod: dict, container: dict, api: KubeApi) -> dict[str, str]:
    """The container's env: envFrom first, then env entries, as kubelet orders them."""
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            ref = source["configMapRef"]
            data = _read(api, namespace, "configmaps", ref["name"], ref.get("optional", False)).get("data", {})
        else:
            ref = source["secretRef"]
            raw = _read(api, namespace, "secrets", ref["name"], ref.get("optional", False)).get("data", {})
            data = {key: base64.b64decode(value).decode() for key, value in raw.items()}
        env.update({prefix + key: value for key, value in data.items()})
    for var in container.get("env", []):
        if "valueFrom" not in var:
            env[var["name"]] = _expand(var.get("value", ""), env)
            continue
        value = _value_from(pod, var["valueFrom"], api)
        if value is not None:
            env[var["name"]] = value
    return env


_FIELD_INDEX = re.compile(r"metadata\.(labels|annotations)\['(.+)'\]")


def _value_from(pod: dict, source: dict, api: KubeApi) -> str | None:
    """Resolve one env valueFrom; None when an optional key is missing."""
    namespace = pod["metadata"]["namespace"]
    if "fieldRef" in source:
        path = source["fieldRef"]["fieldPath"]
        indexed = _FIELD_INDEX.fullmatch(path)
        if indexed:
            return pod["metadata"].get(indexed.group(1), {}).get(indexed.group(2), "")
        fields = {
            "metadata.name": pod["metadata"]["name"],
            "metadata.namespace": namespace,
            "metadata.uid": pod["metadata"]["uid"],
            "spec.nodeName": pod["spec"].get("nodeName", ""),
            "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
            "status.hostIP": "127.0.0.1",
            "status.podIP": "127.0.0.1",
        }
        if path not in fields:
            raise Unsupported(f"env fieldRef {path!r} is not supported by the test node agent")
        return fields[path]
    for key, plural in (("configMapKeyRef", "configmaps"), ("secretKeyRef", "secrets")):
        if key in source:
            ref = source[key]
            data = _read(api, namespace, plural, ref["name"], ref.get("optional", False)).get("data", {})
            if ref["key"] not in data:
                if ref.get("optional", False):
                    return None
                raise NotReady(f"key {ref['key']!r} not in {plural[:-1]} {namespace}/{ref['name']}")
            value = data[ref["key"]]
            return base64.b64decode(value).decode() if plural == "secrets" else value
    raise Unsupported(f"env valueFrom {sorted(source)} is not supported by the test node agent")
