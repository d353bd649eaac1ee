"""A replay of the Kubernetes API for the drain adapter's tests: recorded documents, served on 127.0.0.1.

It answers the requests the ``gpu_drain`` role makes (GET node, merge-PATCH node, list pods with field and
label selectors, POST evictions) from ``tests/fixtures/kubernetes``, and applies them to its copy so that a
cordon shows up in the next GET and an evicted pod leaves the list. Every request is recorded for asserts.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kubernetes"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies ``application/merge-patch+json``."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


@dataclass
class FakeApi:
    """The cluster state the replay serves, and what was asked of it."""

    node: dict[str, Any] = field(default_factory=lambda: load("node.json"))
    pods: list[dict[str, Any]] = field(default_factory=lambda: load("pods.json")["items"])
    # Evictions of these pods answer 429 (disruption budget) this many times before they succeed.
    pdb_blocks: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    url: str = ""

    def evicted(self) -> list[str]:
        return [json.loads(b)["metadata"]["name"] for m, p, b in self.requests if m == "POST" and b]


def _matches(pod: dict[str, Any], query: dict[str, list[str]]) -> bool:
    for sel in ",".join(query.get("fieldSelector", [])).split(","):
        if not sel:
            continue
        if "!=" in sel:
            key, value = sel.split("!=", 1)
            if key == "status.phase" and pod["status"]["phase"] == value:
                return False
        else:
            key, value = sel.split("=", 1)
            if key == "spec.nodeName" and pod["spec"]["nodeName"] != value:
                return False
    for sel in ",".join(query.get("labelSelector", [])).split(","):
        if sel:
            key, value = sel.split("=", 1)
            if pod["metadata"].get("labels", {}).get(key) != value:
                return False
    return True


def _handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, code: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> str:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()

        def do_GET(self) -> None:
            url = urlparse(self.path)
            api.requests.append(("GET", self.path, None))
            name = api.node["metadata"]["name"]
            if url.path == f"/api/v1/nodes/{name}":
                self._send(200, api.node)
            elif url.path == "/api/v1/pods":
                query = parse_qs(url.query)
                items = [p for p in api.pods if _matches(p, query)]
                self._send(200, {**load("pods.json"), "items": items})
            else:
                self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                                 "code": 404})

        def do_PATCH(self) -> None:
            body = self._body()
            api.requests.append(("PATCH", self.path, body))
            assert self.headers["Content-Type"] == "application/merge-patch+json"
            api.node = merge_patch(api.node, json.loads(body))
            self._send(200, api.node)

        def do_POST(self) -> None:
            body = self._body()
            api.requests.append(("POST", self.path, body))
            parts = urlparse(self.path).path.split("/")  # /api/v1/namespaces/NS/pods/NAME/eviction
            ns, name = parts[4], parts[6]
            if api.pdb_blocks.get(name, 0) > 0:
                api.pdb_blocks[name] -= 1
                self._send(429, load("eviction-429.json"))
                return
            before = len(api.pods)
            api.pods = [p for p in api.pods if (p["metadata"]["namespace"], p["metadata"]["name"]) != (ns, name)]
            self._send(201 if len(api.pods) < before else 404, load("eviction-201.json"))

    return Handler


@contextmanager
def serve(api: FakeApi | None = None) -> Iterator[FakeApi]:
    """Serve the replay on 127.0.0.1 (a free port) for the duration of the block."""
    state = api or FakeApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def snapshot(api: FakeApi) -> dict[str, Any]:
    return copy.deepcopy({"node": api.node, "pods": [p["metadata"]["name"] for p in api.pods]})
