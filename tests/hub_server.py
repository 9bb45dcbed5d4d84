"""A loopback stand-in for the Hugging Face Hub: the endpoints huggingface_hub's client calls for
``create_repo``, ``create_commit``, ``list_repo_files`` and ``snapshot_download``, with files kept in
memory. Tests point the client at it through ``huggingface_hub.constants.ENDPOINT``.

Endpoints (the payloads follow huggingface_hub 2.4's hf_api.py, _commit_api.py, file_download.py and
_snapshot_download.py):

- ``POST /api/repos/create``                        create a repo (409 if it exists)
- ``POST /api/validate-yaml``                       check a README.md's YAML header (create_commit asks)
- ``POST /api/models/{repo}/branch/{branch}``        create a branch (from ``startingPoint`` or main;
                                                    409 if it exists)
- ``POST /api/models/{repo}/preupload/{rev}``       upload mode per file
- ``POST /api/models/{repo}/commit/{rev}``          NDJSON commit: header, then ``file`` (base64) /
                                                    ``deletedFile`` lines; to a branch, or with
                                                    ``?create_pr=1`` to a new ``refs/pr/N``
- ``GET  /api/models/{repo}[/revision/{rev}]``      repo info: ``sha`` and ``siblings``
- ``GET  /api/models/{repo}/tree/{rev}``            file listing (path, size, git blob oid)
- ``HEAD|GET /{repo}/resolve/{rev}/{filename}``     a file, with ``X-Repo-Commit``, ``ETag``,
                                                    ``Content-Length``

LFS: preupload answers ``"regular"`` for every file, so the client sends all content inline (base64 in
the commit's NDJSON) and never uses the LFS batch API or Xet; a commit with an ``lfsFile`` line is
refused. The real Hub stores ``model.safetensors`` through LFS/Xet, which changes the upload
transport only, not what ``push_to_hub`` sends or what the download returns.

Revisions in paths are percent-encoded by the client (``refs%2Fpr%2F1``): routes match the raw path
and decode each part.

Errors carry the ``X-Error-Code`` header (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``)
that the client maps to its exception classes. Anything else gets 501, so a new client call shows up
as a clear failure (the one such call today, ``GET /api/agent-harnesses``, is best-effort telemetry
that the client ignores when it fails). Bounded: request bodies over ``MAX_BODY`` are refused, the server thread is a
daemon, and ``stop()`` (called by the fixture's teardown) shuts it down.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

MAX_BODY = 64 * 1024 * 1024
REPO = r"(?P<repo>[^/]+/[^/]+)"
API = re.compile(
    rf"^/api/models/{REPO}(?:/(?P<op>revision|tree|preupload|commit|branch)(?:/(?P<rest>.+))?)?$"
)
RESOLVE = re.compile(rf"^/{REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")


def git_blob_oid(data: bytes) -> str:
    """The git sha1 of a blob: the Hub's oid and ETag for regular (non-LFS) files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    private: bool = False
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # sha -> files at that commit
    messages: dict[str, str] = field(default_factory=dict)
    main: str | None = None
    # branches other than main, and pull requests ("refs/pr/N"): name -> head commit (None: empty)
    refs: dict[str, str | None] = field(default_factory=dict)

    def has_ref(self, revision: str) -> bool:
        return revision == "main" or revision in self.refs

    def resolve(self, revision: str) -> str | None:
        if revision == "main":
            return self.main
        if revision in self.refs:
            return self.refs[revision]
        return revision if revision in self.commits else None

    def set_head(self, revision: str, sha: str) -> None:
        if revision == "main":
            self.main = sha
        else:
            self.refs[revision] = sha


class FakeHub:
    """The server's state, readable by tests: repos, and every request as (method, path, auth)."""

    def __init__(self, require_token: str | None = None) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self.require_token = require_token
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True

    def start(self) -> FakeHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        repo = self.repos[repo_id]
        sha = repo.resolve(revision)
        return {} if sha is None else dict(repo.commits[sha])

    # ------------------------------------------------------------------ state changes
    def create(self, repo_id: str, private: bool) -> bool:
        with self.lock:
            if repo_id in self.repos:
                return False
            self.repos[repo_id] = Repo(private=private)
            return True

    def branch(self, repo_id: str, branch: str, start: str | None) -> bool:
        """Create ``branch`` at ``start`` (default main); False if it exists."""
        with self.lock:
            repo = self.repos[repo_id]
            if repo.has_ref(branch):
                return False
            repo.refs[branch] = repo.resolve(start or "main")
            return True

    def commit(
        self, repo_id: str, lines: list[dict], revision: str = "main", create_pr: bool = False
    ) -> tuple[str, str | None]:
        """Commit on ``revision`` (a branch), or on a new pull request from it; (sha, PR ref or None)."""
        with self.lock:
            repo = self.repos[repo_id]
            if not repo.has_ref(revision):
                raise LookupError(revision)
            parent = repo.resolve(revision)
            files = dict(repo.commits[parent]) if parent else {}
            header = lines[0]["value"]
            for line in lines[1:]:
                key, value = line["key"], line["value"]
                if key == "file":
                    if value.get("encoding") != "base64":
                        raise ValueError(f"unexpected encoding {value.get('encoding')!r}")
                    files[value["path"]] = base64.b64decode(value["content"])
                elif key == "deletedFile":
                    if value["path"] not in files:
                        raise KeyError(value["path"])
                    del files[value["path"]]
                else:
                    raise ValueError(f"this server does not take {key!r} lines (it never asks for LFS)")
            sha = hashlib.sha1(f"{repo_id}:{len(repo.commits)}:{header['summary']}".encode()).hexdigest()
            repo.commits[sha] = files
            repo.messages[sha] = header["summary"]
            pr = None
            if create_pr:
                pr = f"refs/pr/{1 + sum(ref.startswith('refs/pr/') for ref in repo.refs)}"
                repo.refs[pr] = sha
            else:
                repo.set_head(revision, sha)
            return sha, pr


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: one request per connection, so nothing lingers in the client's pool after stop().
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args) -> None:  # keep test output quiet
            pass

        # ------------------------------------------------------------ plumbing
        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, payload, headers: dict[str, str] | None = None) -> None:
            self._send(
                status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}
            )

        def _error(
            self, status: int, message: str, code: str | None = None, extra: dict | None = None
        ) -> None:
            headers = {"X-Error-Message": message, **(extra or {})}
            if code:
                headers["X-Error-Code"] = code
            self._json(status, {"error": message}, headers)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise OverflowError(length)
            return self.rfile.read(length)

        def _path(self) -> str:
            return unquote(urlsplit(self.path).path)

        def _query(self) -> dict[str, list[str]]:
            return parse_qs(urlsplit(self.path).query)

        def _authorized(self) -> bool:
            if hub.require_token is None:
                return True
            return self.headers.get("Authorization") == f"Bearer {hub.require_token}"

        def _dispatch(self, routes) -> None:
            path = self._path()
            raw = urlsplit(self.path).path  # matched undecoded: a revision may hold an encoded "/"
            with hub.lock:
                hub.requests.append((self.command, path, self.headers.get("Authorization")))
            try:
                for pattern, fn in routes:
                    match = pattern.match(raw) if not isinstance(pattern, str) else (path == pattern)
                    if match:
                        fn(match)
                        return
                self._error(501, f"{self.command} {path} is not implemented by the test Hub")
            except OverflowError:
                self._error(413, "request body too large for the test Hub")
            except (ValueError, KeyError) as exc:
                self._error(400, f"bad request: {exc}")

        def _repo(self, repo_id: str) -> Repo | None:
            repo = hub.repos.get(repo_id)
            if repo is None or (repo.private and not self._authorized()):
                self._error(404, "Repository not found", "RepoNotFound")
                return None
            return repo

        # ------------------------------------------------------------ verbs
        def do_POST(self) -> None:
            self._dispatch(
                [
                    ("/api/repos/create", self.create_repo),
                    ("/api/validate-yaml", self.validate_yaml),
                    (API, self.api_post),
                ]
            )

        def do_GET(self) -> None:
            self._dispatch([(API, self.api_get), (RESOLVE, self.resolve)])

        def do_HEAD(self) -> None:
            self._dispatch([(RESOLVE, self.resolve)])

        # ------------------------------------------------------------ endpoints
        def create_repo(self, _) -> None:
            payload = json.loads(self._body())
            if not self._authorized():
                self._error(401, "Invalid credentials in Authorization header")
                return
            if payload.get("type") not in (None, "model"):
                self._error(400, "the test Hub holds model repos only")
                return
            repo_id = f"{payload.get('organization') or 'test-user'}/{payload['name']}"
            url = f"{hub.endpoint}/{repo_id}"
            if not hub.create(repo_id, private=payload.get("visibility") == "private"):
                self._json(409, {"error": "You already created this model repo", "url": url})
                return
            self._json(200, {"url": url, "name": repo_id})

        def validate_yaml(self, _) -> None:
            content = json.loads(self._body())["content"]
            match = re.match(r"^---\n(.*?)\n---\n", content, re.S)
            try:
                if match:
                    yaml.safe_load(match.group(1))
            except yaml.YAMLError as exc:
                self._json(400, {"errors": [{"message": str(exc)}]})
                return
            self._json(200, {"errors": [], "warnings": []})

        def api_post(self, match: re.Match) -> None:
            repo = self._repo(match["repo"])
            if repo is None:
                return
            if not self._authorized():
                self._error(401, "Invalid credentials in Authorization header")
                return
            revision = unquote(match["rest"] or "main")
            body = self._body()
            if match["op"] == "branch":
                start = json.loads(body or b"{}").get("startingPoint")
                if start is not None and repo.resolve(start) is None and not repo.has_ref(start):
                    self._error(404, f"Invalid rev id: {start}", "RevisionNotFound")
                elif hub.branch(match["repo"], revision, start):
                    self._json(200, {})
                else:
                    self._error(409, f"Reference {revision} already exists")
                return
            if not repo.has_ref(revision):
                self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
                return
            if match["op"] == "preupload":
                current = hub.files(match["repo"], revision)
                files = [
                    {
                        "path": f["path"],
                        "uploadMode": "regular",  # everything inline: no LFS batch API, no Xet
                        "shouldIgnore": False,
                        "oid": git_blob_oid(current[f["path"]]) if f["path"] in current else None,
                    }
                    for f in json.loads(body)["files"]
                ]
                self._json(200, {"files": files, "commitOid": repo.main})
            elif match["op"] == "commit":
                if not self.headers.get("Content-Type", "").startswith("application/x-ndjson"):
                    self._error(400, "a commit is NDJSON")
                    return
                lines = [json.loads(line) for line in body.splitlines() if line.strip()]
                if not lines or lines[0].get("key") != "header":
                    self._error(400, "a commit starts with its header line")
                    return
                create_pr = self._query().get("create_pr") == ["1"]
                sha, pr = hub.commit(match["repo"], lines, revision, create_pr)
                url = f"{hub.endpoint}/{match['repo']}/commit/{sha}"
                pr_url = f"{hub.endpoint}/{match['repo']}/discussions/{pr.rsplit('/', 1)[1]}" if pr else None
                self._json(200, {"commitUrl": url, "commitOid": sha, "pullRequestUrl": pr_url})
            else:
                self._error(501, f"POST {match['op']} is not implemented by the test Hub")

        def api_get(self, match: re.Match) -> None:
            repo = self._repo(match["repo"])
            if repo is None:
                return
            op = match["op"]
            revision, _, sub = (match["rest"] or "main").partition("/")
            revision, sub = unquote(revision), unquote(sub)
            if op not in (None, "revision", "tree") or (op == "revision" and sub):
                self._error(501, f"GET {self._path()} is not implemented by the test Hub")
                return
            sha = repo.resolve(revision)
            if sha is None and not (op is None or (repo.has_ref(revision) and sha is None)):
                self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
                return
            files = repo.commits.get(sha, {}) if sha else {}
            if op == "tree":
                prefix = f"{sub.rstrip('/')}/" if sub else ""
                tree = [
                    {"type": "file", "path": name, "size": len(data), "oid": git_blob_oid(data)}
                    for name, data in sorted(files.items())
                    if name.startswith(prefix)
                ]
                self._json(200, tree)
                return
            self._json(
                200,
                {
                    "id": match["repo"],
                    "modelId": match["repo"],
                    "sha": sha,
                    "private": repo.private,
                    "library_name": "latent-skills",
                    "siblings": [{"rfilename": name} for name in sorted(files)],
                },
            )

        def resolve(self, match: re.Match) -> None:
            repo = self._repo(match["repo"])
            if repo is None:
                return
            sha = repo.resolve(unquote(match["rev"]))
            if sha is None:
                self._error(404, "Invalid rev id", "RevisionNotFound")
                return
            data = repo.commits[sha].get(unquote(match["file"]))
            if data is None:
                self._error(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": sha})
                return
            oid = git_blob_oid(data)
            headers = {"X-Repo-Commit": sha, "ETag": f'"{oid}"', "Content-Type": "application/octet-stream"}
            self._send(200, data, headers)

    return Handler
