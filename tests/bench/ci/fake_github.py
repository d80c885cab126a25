"""A fake GitHub REST API on 127.0.0.1 for the comment tests: issue comments kept in memory,
the token checked, lists paginated two to a page with ``Link`` headers as GitHub writes them."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "test-token"
BOT = "github-actions[bot]"
PER_PAGE = 2


@dataclass
class State:
    """What the fake holds; tests read and change it directly."""

    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # PR -> comments
    heads: dict[int, str] = field(default_factory=dict)  # PR -> head commit
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    forbid_writes: bool = False  # answer POST and PATCH as a read-only token gets answered
    next_id: int = 1000

    def add(self, pr: int, body: str, login: str = "someone") -> dict[str, Any]:
        self.next_id += 1
        c = {"id": self.next_id, "body": body, "user": {"login": login}}
        c["html_url"] = f"https://example.invalid/pull/{pr}#issuecomment-{self.next_id}"
        self.comments.setdefault(pr, []).append(c)
        return c

    def find(self, comment_id: int) -> dict[str, Any] | None:
        return next((c for cs in self.comments.values() for c in cs if c["id"] == comment_id), None)


def _handler(state: State, base: list[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(raw)

        def _checked(self) -> bool:
            state.requests.append((self.command, self.path))
            ok = (
                self.headers.get("Authorization") == f"Bearer {TOKEN}"
                and self.headers.get("Accept") == "application/vnd.github+json"
                and bool(self.headers.get("X-GitHub-Api-Version"))
            )
            if not ok:
                self._send(401, {"message": "Bad credentials"})
            return ok

        def _body(self) -> dict[str, Any]:
            return json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

        def do_GET(self) -> None:
            if not self._checked():
                return
            url = urlsplit(self.path)
            if m := re.fullmatch(r"/repos/[^/]+/[^/]+/pulls/(\d+)", url.path):
                sha = state.heads.get(int(m[1]))
                if sha is None:
                    return self._send(404, {"message": "Not Found"})
                return self._send(200, {"number": int(m[1]), "head": {"sha": sha}})
            m = re.fullmatch(r"/repos/[^/]+/[^/]+/issues/(\d+)/comments", url.path)
            if not m:
                return self._send(404, {"message": "Not Found"})
            items = state.comments.get(int(m[1]), [])
            page = int(parse_qs(url.query).get("page", ["1"])[0])
            chunk = items[(page - 1) * PER_PAGE : page * PER_PAGE]
            last = max(1, -(-len(items) // PER_PAGE))
            links = [f'<{base[0]}{url.path}?per_page={PER_PAGE}&page={last}>; rel="last"']
            if page < last:
                links.insert(
                    0, f'<{base[0]}{url.path}?per_page={PER_PAGE}&page={page + 1}>; rel="next"'
                )
            self._send(200, chunk, {"Link": ", ".join(links)})

        def do_POST(self) -> None:
            if not self._checked():
                return
            m = re.fullmatch(r"/repos/[^/]+/[^/]+/issues/(\d+)/comments", self.path)
            if not m:
                return self._send(404, {"message": "Not Found"})
            if state.forbid_writes:
                return self._send(403, {"message": "Resource not accessible by integration"})
            self._send(201, state.add(int(m[1]), self._body()["body"], login=BOT))

        def do_PATCH(self) -> None:
            if not self._checked():
                return
            m = re.fullmatch(r"/repos/[^/]+/[^/]+/issues/comments/(\d+)", self.path)
            c = state.find(int(m[1])) if m else None
            if c is None:
                return self._send(404, {"message": "Not Found"})
            if state.forbid_writes:
                return self._send(403, {"message": "Resource not accessible by integration"})
            c["body"] = self._body()["body"]
            self._send(200, c)

    return Handler


class FakeGitHub:
    """``with FakeGitHub() as api:``; ``api.url`` is its base URL, ``api.state`` its data."""

    def __init__(self) -> None:
        self.state = State()
        base: list[str] = [""]
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state, base))
        self.url = base[0] = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> FakeGitHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
