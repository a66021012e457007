"""`ouro debug-info`: what the support bundle holds, and the secrets it leaves out."""

from __future__ import annotations

import json

import pytest

from ouroboros.trainer.commands import debuginfo as command
from ouroboros.trainer.observability import debuginfo

pytestmark = pytest.mark.unit

SECRETS = {"AWS_SECRET_ACCESS_KEY": "hunter2", "OURO_API_TOKEN": "tok-123", "AZURE_STORAGE_KEY": "k3y",
           "OURO_STORE": "s3://admin:pa55@minio:9000/bucket", "HOME": "/root", "OURO_METRICS_PORT": "8080"}


def test_secrets_are_left_out_by_name_and_inside_urls():
    env = debuginfo.redact_env(SECRETS)
    assert env == {"AWS_SECRET_ACCESS_KEY": "<redacted>", "OURO_API_TOKEN": "<redacted>",
                   "AZURE_STORAGE_KEY": "<redacted>", "OURO_STORE": "s3://<redacted>@minio:9000/bucket",
                   "OURO_METRICS_PORT": "8080"}
    assert debuginfo.redact_value("see https://u:p@h/x and file:///y") == "see https://<redacted>@h/x and file:///y"


def test_the_bundle_reports_versions_store_system_and_interrupted_phases(tmp_path, capsys, monkeypatch):
    store = tmp_path / "store"
    folder = store / "runs" / "r1" / "progress"
    folder.mkdir(parents=True)
    (folder / "hybrid-w0.json").write_text(json.dumps({
        "run": "r1", "phase": "hybrid", "startedAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:05:00Z",
        "step": "hybrid 2/4: games", "fraction": 0.3, "done": False}))
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    assert command.main(["--store", str(store), "-o", "-"]) == 0
    text = capsys.readouterr().out
    for secret in ("hunter2", "tok-123", "k3y", "pa55"):
        assert secret not in text
    doc = json.loads(text)
    assert doc["versions"]["ouroboros"] and doc["versions"]["psutil"]
    assert doc["store"]["runs"] == ["r1"] and doc["store"]["model_versions"] == 0
    assert doc["system"]["memory_total_bytes"] > 0 and doc["system"]["disk"]["free_bytes"] > 0
    assert doc["last_errors"][0]["kind"] == "phase-interrupted"
    assert "hybrid worker 0 stopped at 30% during 'hybrid 2/4: games'" in doc["last_errors"][0]["what"]


def test_an_unreadable_store_is_reported_not_raised(tmp_path):
    doc = debuginfo.bundle("nosuchprotocol://x", {})
    assert "error" in doc["store"] and doc["system"]["cpus_logical"] >= 1


def test_the_bundle_file_is_written(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert command.main(["--store", str(tmp_path / "s"), "-o", str(out)]) == 0
    assert json.loads(out.read_text())["store"]["model_versions"] == 0
    assert command.main(["--store", str(tmp_path / "s"), "-o", str(tmp_path / "no" / "dir" / "b.json")]) == 2
    assert "--output" in capsys.readouterr().err
