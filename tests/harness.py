"""What the Python end-to-end suites share (tests/console, tests/clients): the `make dev`
stack on a free port (infra/local/dev.py: the emulator and hookline-local), a receiver on
127.0.0.1 that records what it is sent, and their fixtures.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ADMIN = "local-admin-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """Records every request; `/xss` answers markup, `/fail` a 500, anything else 200."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                with receiver.lock:
                    receiver.requests.append({"method": self.command, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                if self.path.startswith("/xss"):
                    status, kind, out = 200, "text/html", '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 1">'
                elif self.path.startswith("/fail"):
                    status, kind, out = 500, "text/plain", "receiver failed"
                else:
                    status, kind, out = 200, "text/plain", "ok"
                data = out.encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def to(self, path: str):
        with self.lock:
            return [r for r in self.requests if r["path"].startswith(path)]

    def wait_for(self, path: str, count: int = 1, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.to(path)
            if len(got) >= count:
                return got
            time.sleep(0.1)
        raise AssertionError(f"{path}: {len(self.to(path))} requests after {timeout} s, wanted {count}")


class Stack:
    """`make dev` as a user runs it, on a free port; its output goes to `log` (under target/)."""

    def __init__(self, log: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, PORT=str(self.port), HOOKLINE_ADMIN_KEY=ADMIN, HOOKLINE_RETRY_SCALE="0.01", RUST_LOG="warn")
        self.log = open(ROOT / "target" / log, "w")
        self.process = subprocess.Popen([sys.executable, str(ROOT / "infra/local/dev.py")], env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"make dev exited; see {self.log.name}")
            try:
                with urllib.request.urlopen(f"{self.url}/v1/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"make dev did not answer in 90 s; see {self.log.name}")

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()

    def api(self, method: str, path: str, body=None, key: str = ADMIN, headers=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        request.add_header("Authorization", f"Bearer {key}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            request.add_header(k, v)
        try:
            with urllib.request.urlopen(request, timeout=15) as r:
                text = r.read()
                return r.status, json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            text = e.read()
            return e.code, json.loads(text) if text else None

    def webhook(self, project: str, **fields):
        status, body = self.api("POST", f"/v1/projects/{project}/webhooks", fields)
        assert status == 201, body
        return body

    def event(self, project: str, event: dict):
        status, body = self.api("POST", f"/v1/projects/{project}/events", event)
        assert status == 202, body
        return body


@pytest.fixture(scope="session")
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


def stack_fixture(log: str):
    """A session fixture `stack`: one `make dev` stack for the run, its output in target/`log`."""

    @pytest.fixture(scope="session")
    def stack():
        (ROOT / "target").mkdir(exist_ok=True)
        s = Stack(log)
        yield s
        s.stop()

    return stack


@pytest.fixture()
def project():
    return "t-" + uuid.uuid4().hex[:12]
