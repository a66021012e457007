"""Credentials for a throwaway control plane, made with the openssl CLI.

The API server needs a serving certificate that clients can verify (kopf and
the kubernetes client refuse to skip verification quietly) and a key pair to
sign service-account tokens. openssl is on every machine this project runs
on, so no Python crypto dependency is added for tests alone.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Credentials:
    """Files and secrets one control plane is started with."""

    ca_cert: Path
    """CA that signed the serving certificate; clients trust it."""
    serving_cert: Path
    """kube-apiserver's certificate for 127.0.0.1 and localhost."""
    serving_key: Path
    service_account_key: Path
    """RSA private key that signs service-account tokens."""
    service_account_pub: Path
    token_file: Path
    """kube-apiserver --token-auth-file: one admin token in group system:masters."""
    admin_token: str


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_credentials(directory: Path) -> Credentials:
    """Generate a CA, a serving certificate, a service-account key pair and an admin token."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = directory / "ca.key", directory / "ca.crt"
    key, csr, cert = directory / "apiserver.key", directory / "apiserver.csr", directory / "apiserver.crt"
    sa_key, sa_pub = directory / "sa.key", directory / "sa.pub"
    ext = directory / "apiserver.ext"

    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=ouroboros-test-ca", "-keyout", str(ca_key), "-out", str(ca_cert))
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kube-apiserver",
             "-keyout", str(key), "-out", str(csr))
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default\n"
        "extendedKeyUsage=serverAuth\n"
    )
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
             "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))
    _openssl("genrsa", "-out", str(sa_key), "2048")
    _openssl("rsa", "-in", str(sa_key), "-pubout", "-out", str(sa_pub))

    token = secrets.token_hex(24)
    token_file = directory / "tokens.csv"
    token_file.write_text(f'{token},ouro-admin,ouro-admin,"system:masters"\n')
    return Credentials(ca_cert, cert, key, sa_key, sa_pub, token_file, token)
