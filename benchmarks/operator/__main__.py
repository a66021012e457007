"""Operator latency and memory against a real control plane.

    python -m benchmarks.operator [--single 30] [--burst 100]

Starts the test control plane (etcd, kube-apiserver, kube-controller-manager,
built from Go modules and cached; see tests/integration/kube), installs the
CRDs and runs the operator as a subprocess (`python -m ouroboros.operator`)
exactly as the integration tests do. Then measures:

- apply -> first Job: from just before `kubectl apply` of a TrainingRun to the
  moment a watch on Jobs sees that run's first Job. Once for each of
  `--single` runs applied one after another, and for `--burst` runs applied
  by one `kubectl apply` of a List. Also reported from the run's own ADDED
  watch event (create -> Job), which leaves kubectl's start-up out.
- the peer: the Kubernetes Job controller (kube-controller-manager, Go) on the
  same Jobs, from a Job's ADDED event to its first Pod's ADDED event. It does
  the same kind of work (watch a parent, create a child), so the ratio says
  how far a Python/kopf controller is from the built-in one.
- the operator's peak resident memory (VmHWM) over the whole benchmark.

No pods run (there is no node), so the figures are the controllers' alone.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import ssl
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from integration.kube import controlplane  # noqa: E402
from integration.operator_support import OperatorProcess, apply_crds, tiny_run, wait_for  # noqa: E402


class Watch(threading.Thread):
    """Records when each object of a collection is first seen (monotonic seconds), via a raw watch."""

    def __init__(self, plane, path: str, key):
        super().__init__(daemon=True)
        self.plane, self.path, self.key = plane, path, key
        self.first_seen: dict[str, float] = {}
        self.ready = threading.Event()
        self.stopped = threading.Event()

    def run(self) -> None:
        url = urlparse(self.plane.server)
        ctx = ssl.create_default_context(cafile=str(self.plane.ca_file))
        while not self.stopped.is_set():  # a new CRD's watch may be refused for a moment: retry
            conn = http.client.HTTPSConnection(url.hostname, url.port, context=ctx, timeout=3600)
            try:
                conn.request("GET", f"{self.path}?watch=1",
                             headers={"Authorization": f"Bearer {self.plane.token}"})
                response = conn.getresponse()
            except OSError:  # the control plane is going away
                time.sleep(0.2)
                continue
            if response.status != 200:
                response.read()
                time.sleep(0.2)
                continue
            self.ready.set()
            try:
                self._stream(response)
            except OSError:
                continue

    def _stream(self, response) -> None:
        while line := response.readline():
            now = time.monotonic()
            event = json.loads(line)
            if event.get("type") != "ADDED":
                continue
            key = self.key(event["object"])
            if key is not None:
                self.first_seen.setdefault(key, now)


def _owner(obj: dict) -> str | None:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return refs[0]["name"] if refs else None


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def _ms(values: list[float]) -> str:
    return f"p50 {1000 * statistics.median(values):7.1f} ms   p99 {1000 * percentile(values, 99):7.1f} ms   (n={len(values)})"


def _apply(plane, namespace: str, runs: list[dict]) -> float:
    doc = {"apiVersion": "v1", "kind": "List", "items": runs}
    start = time.monotonic()
    plane.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(doc), timeout=600)
    return start


def measure(plane, namespace: str, names: list[str], started: float, runs: Watch, jobs: Watch, pods: Watch,
            timeout: float) -> dict[str, list[float]]:
    """Wait for each run's first Job and its Pod; return the three latency lists."""
    wait_for(lambda: all(n in jobs.first_seen for n in names), timeout=timeout, what="a Job for every run")
    job_names = {n: f"{n}-0-hybrid" for n in names}
    wait_for(lambda: all(j in pods.first_seen for j in job_names.values()), timeout=timeout,
             what="a Pod for every Job")
    return {
        "apply": [jobs.first_seen[n] - started for n in names],
        "create": [jobs.first_seen[n] - runs.first_seen[n] for n in names],
        "peer": [pods.first_seen[job_names[n]] - jobs.first_seen[n] for n in names],
    }


def _rss_peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.operator", description=__doc__.split("\n")[0])
    parser.add_argument("--single", type=int, default=30, help="runs applied one at a time")
    parser.add_argument("--burst", type=int, default=100, help="runs applied at once")
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="ouro-bench-"))
    t0 = time.monotonic()
    bin_dir = controlplane.build_binaries()
    print(f"control plane binaries ready in {time.monotonic() - t0:.1f}s")
    try:
        with controlplane.running(bin_dir, root / "kube") as plane:
            namespace = "bench"
            plane.kubectl("create", "namespace", namespace)
            apply_crds(plane)
            base = f"/apis/ouroboros.dev/v1alpha1/namespaces/{namespace}"
            runs = Watch(plane, f"{base}/trainingruns", lambda o: o["metadata"]["name"])
            jobs = Watch(plane, f"/apis/batch/v1/namespaces/{namespace}/jobs", _owner)
            pods = Watch(plane, f"/api/v1/namespaces/{namespace}/pods",
                         lambda o: o["metadata"].get("labels", {}).get("batch.kubernetes.io/job-name"))
            for watch in (runs, jobs, pods):
                watch.start()
                watch.ready.wait(30)
            op = OperatorProcess(plane, namespace, root, resync_seconds=3600).start()
            try:
                warm = [tiny_run(f"warm-{i}", phases=("hybrid",)) for i in range(3)]
                measure(plane, namespace, [r["metadata"]["name"] for r in warm], _apply(plane, namespace, warm),
                        runs, jobs, pods, 120)
                single: dict[str, list[float]] = {"apply": [], "create": [], "peer": []}
                for i in range(args.single):
                    run = tiny_run(f"one-{i}", phases=("hybrid",))
                    got = measure(plane, namespace, [run["metadata"]["name"]], _apply(plane, namespace, [run]),
                                  runs, jobs, pods, 60)
                    for k, v in got.items():
                        single[k] += v
                burst_runs = [tiny_run(f"many-{i}", phases=("hybrid",)) for i in range(args.burst)]
                burst = measure(plane, namespace, [r["metadata"]["name"] for r in burst_runs],
                                _apply(plane, namespace, burst_runs), runs, jobs, pods, 600)
                peak = _rss_peak_kib(op.proc.pid)
            finally:
                op.stop()
                for watch in (runs, jobs, pods):
                    watch.stopped.set()
            print(f"\nKubernetes {plane.version}, operator: python -m ouroboros.operator (kopf), one process")
            for title, data in ((f"1 TrainingRun at a time ({args.single} runs)", single),
                                (f"{args.burst} TrainingRuns in one kubectl apply", burst)):
                print(f"\n{title}")
                print(f"  kubectl apply -> first Job     {_ms(data['apply'])}")
                print(f"  run created   -> first Job     {_ms(data['create'])}")
                print(f"  peer: Job controller, Job -> Pod {_ms(data['peer'])}")
                ratio = statistics.median(data["create"]) / max(statistics.median(data["peer"]), 1e-6)
                print(f"  ratio (run->Job / Job->Pod, p50): {ratio:.2f}x")
            print(f"\noperator peak RSS: {peak / 1024:.1f} MiB")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
