"""A minimal JSON client for the Kubernetes API, for test helpers only.

The node agent needs a handful of calls (list pods, bind, patch status,
delete) on plain dicts shaped exactly like the API's JSON, which is what the
Kubernetes documentation and `kubectl get -o json` show; the generated Python
client's models would add a translation layer and version drift for nothing.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any


class ApiError(Exception):
    """A non-2xx answer from the API server."""

    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


class KubeApi:
    """JSON over HTTPS to one API server with a bearer token."""

    def __init__(self, server: str, token: str, ca_file: Path, timeout: float = 30.0):
        self.server = server.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._context = ssl.create_default_context(cafile=str(ca_file))
        self._timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
    ) -> Any:
        """Send one request; return the decoded JSON answer, raise ApiError otherwise."""
        payload = self._send(method, path, body, content_type, query)
        return json.loads(payload) if payload else None

    def text(self, path: str) -> str:
        """GET a plain-text endpoint such as /readyz."""
        return self._send("GET", path, None, "", None).decode()

    def _send(
        self, method: str, path: str, body: Any, content_type: str, query: dict[str, str] | None
    ) -> bytes:
        url = self.server + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self._headers)
        if data is not None:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, context=self._context, timeout=self._timeout) as resp:
                return resp.read()
        except urllib.error.HTTPError as err:
            raise ApiError(err.code, err.read().decode(errors="replace")) from None

    def get(self, path: str, **query: str) -> Any:
        return self.request("GET", path, query=query or None)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def delete(self, path: str, body: Any = None) -> Any:
        return self.request("DELETE", path, body)

    def merge_patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, body, content_type="application/merge-patch+json")

    def strategic_patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, body, content_type="application/strategic-merge-patch+json")
