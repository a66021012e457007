"""Pure builders of a Champion's registry Jobs (``ouro champion job OPERATION ...``).

Every write to the model registry runs in the trainer image, through the
trainer's one promotion path, never in the operator. A registry Job is short
(it reads and writes one pointer document, or, for ``check``, plays a few
smoke games), takes its arguments on the command line (no ConfigMap to
garbage-collect) and writes a ``contract.champion.RegistryReport`` to its
termination log. Like the phase Jobs: ``backoffLimit: 0`` (a failure is
reported, and a new trigger makes a new Job), no TTL (the report must be read
first), owned by the Champion so deleting it deletes them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ouroboros.contract.champion import ChampionOperation
from ouroboros.operator.builders import manifests, names
from ouroboros.operator.resources import API_VERSION, Champion
from ouroboros.operator.settings import JobSettings

CONTAINER_NAME = "trainer"
STORAGE_VOLUME = "artifacts"


@dataclasses.dataclass(frozen=True)
class JobArgs:
    """The arguments of one registry Job (``ouro champion job --help``)."""

    game: str
    """Game key of the pointer."""
    version: str | None = None
    """Version to promote, pin or check."""
    run: str | None = None
    """Run the promoted version came from."""
    by: str | None = None
    """Who asks (recorded in the registry's history)."""
    reason: str | None = None
    """Why (recorded in the history)."""
    against: str | None = None
    """check: the previous champion to play."""
    games: int | None = None
    """check: games to play."""
    min_win_rate: float | None = None
    """check: score under which the registry rolls back."""
    statistics: str | None = None
    """promote: the gate's statistics (GateStatistics JSON) to keep in the history."""
    player: str | None = None
    """check: how both versions play (``PromotionSpec.served_player`` of the Champion's gate); None plays
    the bare policy and leaves ``--player`` off the command line, so a Champion whose ``spec.image`` is a
    trainer from before the flag still runs its checks."""


SEARCH_CPU = "1"
"""CPU request of a check whose players search: a search's strength is what its time budget buys, so
the check gets the core a server would give it, not a registry Job's 100m."""


def owner_reference(champion: Champion) -> dict[str, Any]:
    """Ties a registry Job to its Champion."""
    return {"apiVersion": API_VERSION, "kind": "Champion", "name": champion.metadata.name,
            "uid": champion.metadata.uid, "controller": True, "blockOwnerDeletion": True}


def command(operation: ChampionOperation, args: JobArgs, store: str, settings: JobSettings) -> list[str]:
    """The container's command line."""
    line = [*settings.trainer_command, "champion", "job", operation.value, "--game", args.game, "--store", store,
            "--result", settings.termination_message_path]
    for flag, value in (("--version", args.version), ("--run", args.run), ("--by", args.by),
                        ("--reason", args.reason), ("--against", args.against), ("--games", args.games),
                        ("--min-win-rate", args.min_win_rate), ("--statistics", args.statistics),
                        ("--player", args.player)):
        if value is not None:
            line += [flag, str(value)]
    return line


def registry_job(champion: Champion, name: str, operation: ChampionOperation, args: JobArgs,
                 settings: JobSettings) -> dict[str, Any]:
    """The Job manifest of one registry operation of ``champion``."""
    meta, spec = champion.metadata, champion.spec
    storage = spec.storage
    labels = names.champion_labels(meta.name, meta.uid, operation.value)
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": spec.image or settings.default_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": command(operation, args, storage.url, settings),
        "env": [{"name": "OURO_STORAGE_URL", "value": storage.url},
                {"name": "TMPDIR", "value": settings.scratch_path}],  # the root filesystem is read-only
        "resources": {"requests": {"cpu": SEARCH_CPU if args.player else "100m", "memory": "256Mi"},
                      "limits": {"memory": "1Gi"}},
        "terminationMessagePath": settings.termination_message_path,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    # the same hardened pod as a phase Job: restricted Pod Security, a scratch volume, the shared claim
    container["securityContext"] = manifests.container_security_context()
    pod_spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container],
                                "securityContext": manifests.pod_security_context(settings),
                                "volumes": [{"name": manifests.SCRATCH_VOLUME, "emptyDir": {}}]}
    container["volumeMounts"] = [{"name": manifests.SCRATCH_VOLUME, "mountPath": settings.scratch_path}]
    claim = manifests.storage_claim(storage, settings)
    if claim:
        pod_spec["volumes"].append({"name": STORAGE_VOLUME, "persistentVolumeClaim": {"claimName": claim}})
        container["volumeMounts"].append({"name": STORAGE_VOLUME, "mountPath": storage.mount_path})
    if storage.secret_name:
        container["envFrom"] = [{"secretRef": {"name": storage.secret_name}}]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": meta.namespace, "labels": labels,
                     "ownerReferences": [owner_reference(champion)]},
        "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": labels}, "spec": pod_spec}},
    }
