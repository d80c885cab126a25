"""A minimal GitHub REST client (urllib only): JSON requests, ``Link``-header pagination, and
errors that say the status, GitHub's message and what to do.

The base URL is ``GITHUB_API_URL`` (set by GitHub Actions; GitHub Enterprise Server has its
own), else the public API; the token is ``GITHUB_TOKEN``. A ``next`` page on another host than
the base URL is refused, so the token is never sent anywhere else.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

PUBLIC_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
API_URL_ENV = "GITHUB_API_URL"
TOKEN_ENV = "GITHUB_TOKEN"
USER_AGENT = "mnist-kernels-bench-ci"
#: what to do about a status code, for the error message
HINTS = {
    401: f"the token is missing, expired or wrong: set {TOKEN_ENV} (in a workflow: "
    f"`{TOKEN_ENV}: ${{{{ secrets.GITHUB_TOKEN }}}}`)",
    403: "the token lacks a permission this call needs (commenting needs `pull-requests: "
    "write`, and a workflow triggered by a fork's pull_request never gets it: comment from the "
    "workflow_run workflow), or the API rate limit is spent",
    404: "no such repository, pull request or comment, or the token cannot see it (a private "
    "repository needs `contents: read`); check --repo and --pr",
    422: "GitHub refused the request's content (a comment body over 65536 characters?)",
}


class GitHubError(RuntimeError):
    """A request GitHub refused or that did not reach it; ``status`` is None for the latter."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Response:
    """A decoded response: ``data`` (JSON, or None for an empty body) and its headers."""

    status: int
    data: Any
    headers: Mapping[str, str]


def next_link(header: str | None) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header, or None on the last page."""
    for part in (header or "").split(","):
        target, _, params = part.partition(";")
        target = target.strip()
        if not (target.startswith("<") and target.endswith(">")):
            continue
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "rel" and "next" in value.strip().strip('"').split():
                return target[1:-1]
    return None


class GitHub:
    """``GitHub(token, api_url)``; :meth:`from_env` reads both from the environment."""

    def __init__(self, token: str | None, api_url: str = PUBLIC_API_URL, timeout_s: float = 30):
        self.token = token
        self.api_url = api_url.rstrip("/")
        self.timeout_s = timeout_s

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GitHub:
        env = os.environ if env is None else env
        return cls(env.get(TOKEN_ENV) or None, env.get(API_URL_ENV) or PUBLIC_API_URL)

    def url(self, path: str) -> str:
        """``path`` (``/repos/...``) under the base URL; a full URL must be on its host."""
        if not path.startswith(("http://", "https://")):
            return f"{self.api_url}/{path.lstrip('/')}"
        mine, theirs = urllib.parse.urlsplit(self.api_url), urllib.parse.urlsplit(path)
        if (mine.scheme, mine.netloc) != (theirs.scheme, theirs.netloc):
            raise GitHubError(f"refusing to send the token to {theirs.netloc} (not {mine.netloc})")
        return path

    def request(self, method: str, path: str, body: Any = None) -> Response:
        """One call; raises :class:`GitHubError` on a status of 400 or more or no answer."""
        if not self.token:
            raise GitHubError(
                f"{TOKEN_ENV} is not set: the GitHub API needs a token "
                f"(in a workflow: `env: {TOKEN_ENV}: ${{{{ secrets.GITHUB_TOKEN }}}}`)"
            )
        url = self.url(path)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/vnd.github+json")
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("X-GitHub-Api-Version", API_VERSION)
        req.add_header("User-Agent", USER_AGENT)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                return Response(r.status, _decode(r.read()), dict(r.headers.items()))
        except urllib.error.HTTPError as e:
            raise _error(method, url, e.code, e.read(), e.headers) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise GitHubError(
                f"{method} {url}: no answer ({reason}); check {API_URL_ENV} and the network"
            ) from None

    def paginate(self, path: str, per_page: int = 100) -> Iterator[Any]:
        """Every item of a list endpoint, following ``Link: <...>; rel="next"``."""
        sep = "&" if "?" in path else "?"
        url: str | None = f"{path}{sep}per_page={per_page}"
        while url:
            r = self.request("GET", url)
            if not isinstance(r.data, list):
                raise GitHubError(f"GET {url}: expected a list, got {type(r.data).__name__}")
            yield from r.data
            url = next_link(_header(r.headers, "Link"))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def _decode(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace")


def _error(method: str, url: str, status: int, raw: bytes, headers: Any) -> GitHubError:
    """The error of a refused call: status, GitHub's message and documentation link, a hint."""
    data = _decode(raw)
    said = data.get("message") if isinstance(data, dict) else (data or "")
    doc = data.get("documentation_url") if isinstance(data, dict) else None
    hint = HINTS.get(status, "")
    if status in (403, 429) and headers is not None and headers.get("x-ratelimit-remaining") == "0":
        hint = "the API rate limit is spent; retry after the time in x-ratelimit-reset"
    text = f"{method} {url}: HTTP {status}: {str(said)[:300] or 'no message'}"
    text += f" ({doc})" if doc else ""
    text += f"; {hint}" if hint else ""
    return GitHubError(text, status)
