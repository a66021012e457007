"""A real S3-compatible server for the object-store tests: the Versity S3 Gateway, built from its Go module.

`gateway_binary()` builds versitygw once with scripts/build-versitygw.sh (cached
under $OURO_CACHE/versitygw/<version>/bin) and returns its path; `running(binary,
root)` starts it with its POSIX backend on a folder under `root` (object metadata
in a sidecar folder, so the filesystem needs no extended attributes), on a free
loopback port with random root credentials, waits until it answers signed S3
requests, and stops it on exit. Clients reach it the way users reach any S3
endpoint, through the standard AWS variables (`S3Server.env`): AWS_ENDPOINT_URL,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION. Nothing is mocked:
requests are signed (SigV4) and checked, objects land on disk as files, and
CopyObject, listings and multipart uploads are the gateway's own. Why versitygw
and not MinIO: README, "Object storage".
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO / "scripts" / "build-versitygw.sh"
REGION = "us-east-1"
"""The gateway's default region; botocore signs with it."""


class S3Unavailable(RuntimeError):
    """The S3 server cannot be built or started here (no Go toolchain, or the build failed)."""


def gateway_binary() -> Path:
    """Path of the versitygw binary, building it if needed (about 5 minutes cold); raises S3Unavailable."""
    cached = subprocess.run(["bash", str(BUILD_SCRIPT), "--path"], stdout=subprocess.PIPE, text=True,
                            check=True).stdout.strip()
    if shutil.which("go") is None and not Path(cached).exists():
        raise S3Unavailable("the Go toolchain (`go`) is not on PATH")
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    if result.returncode != 0:
        raise S3Unavailable(f"scripts/build-versitygw.sh exited {result.returncode}")
    return Path(result.stdout.strip().splitlines()[-1])


@dataclass
class S3Server:
    """A running gateway: its endpoint, root credentials, data folder (one folder per bucket) and log."""

    endpoint: str
    access_key: str
    secret_key: str
    data_dir: Path
    log_path: Path

    @property
    def env(self) -> dict[str, str]:
        """The standard AWS variables that point any boto-based client (s3fs) at this server."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": REGION}

    def filesystem(self):
        """A fresh s3fs filesystem for this server (no instance cache, no listings cache)."""
        import s3fs

        return s3fs.S3FileSystem(key=self.access_key, secret=self.secret_key, endpoint_url=self.endpoint,
                                 skip_instance_cache=True, use_listings_cache=False)

    def create_bucket(self, prefix: str = "ouro") -> str:
        """Create a new, empty bucket; returns its name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.filesystem().mkdir(name)
        return name

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(binary: Path, root: Path, timeout_s: float = 120.0) -> Iterator[S3Server]:
    """versitygw serving `root/data` on 127.0.0.1 (a free port) until the block ends."""
    data, sidecar, log_path = root / "data", root / "meta", root / "versitygw.log"
    data.mkdir(parents=True, exist_ok=True)
    sidecar.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    server = S3Server(endpoint=f"http://127.0.0.1:{port}", access_key=f"ouro{secrets.token_hex(4)}",
                      secret_key=secrets.token_hex(16), data_dir=data, log_path=log_path)
    # credentials through the environment, not argv, where `ps` would show them
    env = {**os.environ, "ROOT_ACCESS_KEY_ID": server.access_key, "ROOT_SECRET_ACCESS_KEY": server.secret_key}
    argv = [str(binary), "--port", f"127.0.0.1:{port}", "--region", REGION, "--quiet",
            "posix", "--sidecar", str(sidecar), str(data)]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(server, proc, timeout_s)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def _wait_ready(server: S3Server, proc: subprocess.Popen, timeout_s: float) -> None:
    """Until a signed ListBuckets succeeds: the port is open and the credentials are loaded."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise S3Unavailable(f"versitygw exited with {proc.returncode}: {server.log()[-2000:]}")
        try:
            server.filesystem().ls("")
            return
        except Exception as exc:  # noqa: BLE001 - not up yet; the last error is reported below
            last = exc
            time.sleep(0.3)
    raise S3Unavailable(f"versitygw did not answer within {timeout_s:.0f}s (last error: {last}): {server.log()[-2000:]}")
