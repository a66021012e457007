"""The champion in the cluster: a real operator, a real API server, and the node agent running the real
`ouro phase` and `ouro champion job` commands on tiny networks against a per-namespace store.

Every test ends by reading the registry's pointer in the store (the source of truth) and checking that
`Champion.status` agrees with it.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ouroboros.trainer.learning import imported

from .operator_support import (
    TINY_GATE,
    OperatorProcess,
    apply,
    apply_crds,
    champion,
    champion_status,
    condition,
    items,
    run_status,
    tiny_run,
    wait_for,
)

pytestmark = pytest.mark.integration
GAME = "standard-7x7-2p"
STORE = "file:///var/lib/ouroboros/artifacts/registry"
STORAGE = {"persistentVolumeClaim": "ouroboros-artifacts", "url": STORE}
OURO = [str(Path(sys.executable).parent / "ouro")]


@pytest.fixture(scope="module")
def cluster(kube_cluster, node_agent):
    apply_crds(kube_cluster)
    return kube_cluster


@pytest.fixture
def operator(cluster, namespace, tmp_path):
    started = []

    def start(**kwargs):
        proc = OperatorProcess(cluster, namespace, tmp_path, trainer_command=OURO, **kwargs).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def store_pointer(node_agent, namespace) -> dict:
    """The registry's champion pointer, read from the namespace's claim (what servers read)."""
    path = Path(node_agent.root) / "claims" / namespace / "ouroboros-artifacts" / "registry" / "champions" / f"{GAME}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def agree(cluster, node_agent, namespace) -> dict:
    """Wait until Champion.status mirrors the store's pointer; return the status."""
    def same():
        status, pointer = champion_status(cluster, namespace), store_pointer(node_agent, namespace)
        return status if (status.get("registryGeneration") == pointer.get("generation", 0)
                          and status.get("version") == pointer.get("version")
                          and status.get("pinnedVersion") == pointer.get("pinned_version")) else None
    return wait_for(same, timeout=300, interval=0.5, what="Champion.status to agree with the store")


def run_to_end(cluster, namespace, name, **spec):
    apply(cluster, namespace, tiny_run(name, phases=("bootstrap", "evaluate"), storage=STORAGE, **spec))
    wait_for(lambda: run_status(cluster, namespace, name).get("phase") in ("Succeeded", "Failed"), timeout=300,
             interval=1, what=f"run {name} to finish")
    status = run_status(cluster, namespace, name)
    assert status["phase"] == "Succeeded", status
    return status


def ouro_champion(cluster, namespace, *args) -> subprocess.CompletedProcess:
    return subprocess.run([*OURO, "champion", *args, "-n", namespace], env=cluster.env, capture_output=True,
                          text=True, timeout=60, check=True)


def champion_events(cluster, namespace) -> list[dict]:
    return [e for e in items(cluster, "events", namespace) if e["involvedObject"].get("kind") == "Champion"]


def test_runs_naming_a_missing_champion_or_one_of_another_game_start_nothing(cluster, namespace, operator):
    operator()
    apply(cluster, namespace, champion("big", game={"width": 11, "height": 11}))
    apply(cluster, namespace, tiny_run("orphan", champion="ghost"))
    apply(cluster, namespace, tiny_run("mismatch", champion="big"))
    cluster.kubectl("wait", "--for=condition=Failed", "trainingrun/mismatch", "-n", namespace, "--timeout=60s")
    failed = condition(run_status(cluster, namespace, "mismatch"), "Failed")
    assert failed["reason"] == "ChampionGameMismatch" and failed["message"].startswith("spec.champion: ")
    assert "standard-11x11-2p" in failed["message"]
    status = wait_for(lambda: (s := run_status(cluster, namespace, "orphan")).get("conditions") and s,
                      timeout=60, what="orphan run reconciled")
    running = condition(status, "Running")
    assert status["phase"] == "Pending" and running["reason"] == "ChampionNotFound"
    assert "spec.champion" in running["message"] and "ghost" in running["message"]
    assert items(cluster, "jobs", namespace, "ouroboros.dev/phase") == []


def test_first_champion_with_operator_kills_then_an_impossible_gate_is_rejected(
        cluster, namespace, operator, node_agent):
    """The operator is killed at random moments while the first run trains, gates, promotes and the
    Champion syncs; afterwards resource and store agree. The first run sets no spec.promotion, so its
    Champion's gate applies (with a baseline, whose games are kept as official-CLI logs). A second run
    whose spec.promotion asks for a score no candidate reaches is rejected with its statistics, and the
    champion stays."""
    gate = {**TINY_GATE, "baselines": [{"player": "greedy", "games": 2}]}
    apply(cluster, namespace, champion(storage=STORAGE, policy={"postPromotionCheck": {"games": 0}, "gate": gate}))
    started = time.monotonic()
    apply(cluster, namespace, tiny_run("first", phases=("bootstrap", "evaluate"), storage=STORAGE, promotion=None))
    rng = random.Random(9)
    kills = 0
    while kills < 8 and not champion_status(cluster, namespace).get("version"):
        op = operator()
        time.sleep(rng.uniform(1.0, 6.0))
        op.kill()
        kills += 1
    operator()
    cluster.kubectl("wait", "--for=condition=Succeeded", "trainingrun/first", "-n", namespace, "--timeout=300s")
    promotion = run_status(cluster, namespace, "first")["promotion"]
    assert promotion["decision"] == "Promoted" and promotion["reason"] == "FirstChampion"
    statistics = promotion["statistics"]
    assert statistics["gateSource"] == "Champion" and len(statistics["baselines"]) == 1, statistics
    assert statistics["baselines"][0]["player"] == "greedy"
    assert statistics["baselines"][0]["games"] == 2 and statistics["baselines"][0]["passed"]
    [logs] = statistics["gameLogs"]  # the greedy games, in the store the servers read
    claim = Path(node_agent.root) / "claims" / namespace / "ouroboros-artifacts"
    folder = Path(logs.removeprefix("file://"))  # the node agent mounts the claim at a local directory
    assert folder.is_relative_to(claim) and folder.name == "greedy", logs
    replayed = [imported.read(p) for p in sorted(folder.glob("*.jsonl"))]  # validated turn by turn
    assert len(replayed) == 2 and all(statistics["candidate"] in g.names and "greedy" in g.names for g in replayed)
    status = agree(cluster, node_agent, namespace)
    loop_seconds = time.monotonic() - started
    assert status["version"] == promotion["statistics"]["candidate"] and status["fromRun"] == "first"
    assert status["history"][0]["reason"] == "Initial" and status["artifact"]["sha256"]
    assert condition(status, "Ready")["status"] == "True"
    print(f"tiny loop (bootstrap -> evaluate -> champion mirrored, {kills} operator kills): {loop_seconds:.0f} s")
    table = cluster.kubectl("get", "champions", "-n", namespace).stdout
    assert status["version"] in table and "VERSION" in table and "SCORE" in table

    second = run_to_end(cluster, namespace, "second",
                        # limits no model meets (8 wins of 8 would reach a 1.0 score by chance)
                        promotion={"method": "winRate", "games": 8, "minGames": 2, "minWinRate": 1.0,
                                   "readiness": {"maxP99LatencyMs": 1000, "maxPeakMemoryMb": 0.001}})
    rejected = second["promotion"]
    assert rejected["decision"] == "Rejected" and rejected["statistics"]["games"] == 8
    assert rejected["statistics"]["gateSource"] == "TrainingRun"
    assert rejected["statistics"]["verdict"] == "reject"
    assert any("not production-ready: peak memory" in r for r in rejected["statistics"]["reasons"])
    assert rejected["statistics"]["champion"] == status["version"]
    assert "Rejected" in cluster.kubectl("get", "trainingruns", "-n", namespace).stdout  # the default columns
    assert agree(cluster, node_agent, namespace)["version"] == status["version"]


def test_manual_approval_post_promotion_rollback_pin_and_unpin(cluster, namespace, operator, node_agent):
    operator()
    # the runs bring their own gates; the Champion's gate says how its champion is served (inside the neural
    # search, on a simulation cap here so the check's games are the same on any machine), and so how the
    # post-promotion check plays both versions
    served = {**TINY_GATE, "player": "nsearch", "moveBudgetMs": 0, "maxVisits": 4}
    apply(cluster, namespace, champion(storage=STORAGE, policy={
        "approval": "Manual", "postPromotionCheck": {"games": 10, "minWinRate": 1.0}, "gate": served}))
    first = run_to_end(cluster, namespace, "a")
    assert first["promotion"]["decision"] == "Pending" and first["promotion"]["reason"] == "AwaitingApproval"
    cluster.kubectl("wait", "--for=condition=AwaitingApproval", "champion/main", "-n", namespace, "--timeout=60s")
    assert store_pointer(node_agent, namespace).get("version") is None  # nothing in force before approval
    v1 = champion_status(cluster, namespace)["pending"]["version"]
    ouro_champion(cluster, namespace, "approve", "main", "--by", "ada")
    status = wait_for(lambda: (s := agree(cluster, node_agent, namespace)).get("version") == v1 and s,
                      timeout=300, what="approved candidate in force")
    assert status["history"][0]["by"] == "ada" and status["history"][0]["run"] == "a"
    assert condition(status, "AwaitingApproval")["status"] == "False"
    approved = wait_for(lambda: (p := run_status(cluster, namespace, "a")["promotion"])["reason"] == "Approved" and p,
                        timeout=60, what="run a's promotion approved")
    assert approved["decision"] == "Promoted" and "ada" in approved["message"]

    # a second candidate passes a lenient gate (SPRT between -1000 and -900 Elo, "not hopeless", with alpha 0.9 so
    # that the first game it does not lose promotes it: at alpha 0.05 it needed about 6 such games of 20, and a
    # tiny network that lost more left the gate undecided), is approved, and must then score 1.0 against the first
    # in its post-promotion check: it does not, so it is rolled back
    second = run_to_end(cluster, namespace, "b", promotion={
        "games": 20, "minGames": 2, "sprt": {"elo0": -1000, "elo1": -900, "alpha": 0.9, "beta": 0.05},
        "readiness": {"maxP99LatencyMs": 1000, "maxPeakMemoryMb": 1000}})
    assert second["promotion"]["decision"] == "Pending", second["promotion"]
    wait_for(lambda: (champion_status(cluster, namespace).get("pending") or {}).get("run") == "b", timeout=180,
             what="b pending")
    v2 = champion_status(cluster, namespace)["pending"]["version"]
    ouro_champion(cluster, namespace, "approve", "main", "--run", "b", "--by", "bob")
    cluster.kubectl("wait", "--for=condition=Degraded", "champion/main", "-n", namespace, "--timeout=180s")
    status = agree(cluster, node_agent, namespace)
    degraded = condition(status, "Degraded")
    assert degraded["reason"] == "PostPromotionCheckFailed" and v2 in degraded["message"]
    assert status["version"] == v1 and status["lastCheck"]["passed"] is False
    assert status["lastCheck"]["player"] == "nsearch:ms=0,visits=4" and status["lastCheck"]["games"] == 10
    (job,) = [j for j in items(cluster, "jobs", namespace)
              if j["metadata"]["labels"].get("ouroboros.dev/registry-operation") == "check"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][container["command"].index("--player") + 1] == "nsearch:ms=0,visits=4"
    assert container["resources"]["requests"]["cpu"] == "1"
    reasons = [e["reason"] for e in status["history"]]
    assert reasons[:2] == ["RolledBack", "Promoted"] and "check failed" in status["history"][0]["message"]
    warnings = {e["reason"] for e in champion_events(cluster, namespace) if e["type"] == "Warning"}
    assert "PostPromotionCheckFailed" in warnings

    ouro_champion(cluster, namespace, "rollback", "main", v2)  # pin v2 by hand
    status = wait_for(lambda: (s := agree(cluster, node_agent, namespace)).get("pinnedVersion") == v2 and s,
                      timeout=300, what="pinned")
    assert status["version"] == v2 and condition(status, "Pinned")["status"] == "True"
    assert store_pointer(node_agent, namespace)["pinned_version"] == v2
    ouro_champion(cluster, namespace, "unpin", "main")
    status = wait_for(lambda: (s := agree(cluster, node_agent, namespace)).get("registryGeneration")
                      and s.get("pinnedVersion") is None and s, timeout=300, what="unpinned")
    assert status["version"] == v2 and condition(status, "Pinned")["status"] == "False"
    assert [e["reason"] for e in status["history"]][:2] == ["Unpinned", "Pinned"]
