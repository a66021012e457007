"""Every Go tool the project builds is safe to build twice at once.

Two test sessions on one machine (or a test and a user) may both find a tool
missing and build it at the same moment. The build scripts take a lock and
write under per-run temporary names; tests/gobuild.py does the same. Here two
builds start together against an empty cache and must both succeed, build
once, and leave no temporary file behind.

The scripts run with a stand-in `go` first on PATH (a shell script that
answers `go mod download -json`, `go list` and `go build` in a second, and
counts its builds): the real builds take minutes, and what is under test is
the scripts' locking and renaming, not Go. tests/gobuild.py is tested with the
real Go toolchain on a one-file program.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
import threading
from pathlib import Path

import gobuild
import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def env_file(name: str) -> dict[str, str]:
    pairs = {}
    for line in (REPO / "scripts" / name).read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


@pytest.fixture
def fake_go(tmp_path) -> tuple[dict[str, str], Path]:
    """(env, builds log): PATH starts with a stand-in `go`; each `go build` appends a line to the log."""
    versions = {**env_file("control-plane-versions.env"), **env_file("helm-version.env"),
                **env_file("kueue-version.env"), **env_file("versitygw-version.env")}
    bin_dir, data = tmp_path / "fakebin", tmp_path / "fakedata"
    bin_dir.mkdir()
    data.mkdir()
    (data / "go.mod").write_text(textwrap.dedent(f"""\
        module fake
        go 1.26.0
        require (
        \tgo.etcd.io/etcd/server/v3 {versions['ETCD_VERSION']}
        \tk8s.io/client-go v0.37.0
        )
        """))
    (data / "info.json").write_text(json.dumps({"Time": "2026-01-01T00:00:00Z"}))
    (data / "module.json").write_text(json.dumps({"GoMod": str(data / "go.mod"), "Info": str(data / "info.json"),
                                                  "Dir": str(data)}))
    crds = data / "config" / "components" / "crd" / "bases"  # Kueue's CRDs, copied next to its binary
    crds.mkdir(parents=True)
    (crds / "kueue.x-k8s.io_workloads.yaml").write_text("kind: CustomResourceDefinition\n")
    # What every built binary prints: each script's version check looks for its own text.
    banner = (f"{versions['HELM_VERSION']} Kubernetes {versions['KUBERNETES_VERSION']} "
              f"Client Version: {versions['KUBERNETES_VERSION']} etcd Version: {versions['ETCD_VERSION'][1:]} "
              f"Version  : {versions['VERSITYGW_VERSION']}")
    log = tmp_path / "builds.log"
    go = bin_dir / "go"
    go.write_text(textwrap.dedent(f"""\
        #!/usr/bin/env bash
        case "$1" in
          version) echo "go version go1.26.0 fake" ;;
          mod) cat {data / 'module.json'} ;;
          list) ;;
          build)
            while [[ $# -gt 0 && $1 != -o ]]; do shift; done
            sleep 1
            printf '#!/bin/sh\\necho "{banner}"\\n' > "$2"
            echo "$2" >> {log} ;;
        esac
        """))
    go.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "OURO_CACHE": str(tmp_path / "cache")}
    return env, log


def run_twice_at_once(argv: list[str], env: dict[str, str]) -> list[subprocess.CompletedProcess]:
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=120), *p.communicate()) for p in procs]


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".") and not p.name.endswith(".lock")
            or p.name.startswith("build.")]


@pytest.mark.parametrize(("script", "binaries"), [
    ("build-helm.sh", ["helm"]),
    ("build-kueue.sh", ["kueue"]),
    ("build-control-plane.sh", ["etcd", "kube-apiserver", "kube-controller-manager", "kubectl"]),
    ("build-versitygw.sh", ["versitygw"]),
])
def test_two_script_builds_at_once_build_once(fake_go, tmp_path, script, binaries):
    env, log = fake_go
    results = run_twice_at_once(["bash", str(REPO / "scripts" / script)], env)
    for result in results:
        assert result.returncode == 0, result.stderr
    out = {Path(r.stdout.strip().splitlines()[-1]) for r in results}
    assert len(out) == 1  # both print the same path
    built = log.read_text().splitlines()
    assert len(built) == len(binaries), built  # each binary built once: the second run waited and reused it
    assert any("waiting for it" in r.stderr for r in results)
    assert not leftovers(tmp_path / "cache")


def test_gobuild_twice_at_once_builds_once(tmp_path, monkeypatch):
    if shutil.which("go") is None:
        pytest.skip("needs the Go toolchain")
    src = tmp_path / "src"
    src.mkdir()
    (src / "go.mod").write_text("module hello\n\ngo 1.21\n")
    (src / "main.go").write_text('package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello") }\n')
    target = tmp_path / "cache" / "hello"
    calls = []
    real_build = gobuild._build
    monkeypatch.setattr(gobuild, "_build", lambda *a, **k: calls.append(a) or real_build(*a, **k))
    results, errors = [], []

    def build():
        try:
            results.append(gobuild.build_once(target, src))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors and results == [target, target]
    assert len(calls) == 1
    assert subprocess.run([str(target)], capture_output=True, text=True, check=True).stdout == "hello\n"
    assert [p.name for p in target.parent.iterdir() if p.name != ".hello.lock"] == ["hello"]
