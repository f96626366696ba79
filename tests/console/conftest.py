"""The console's browser tests: a real headless Chromium (Debian's `chromium`, driven by
Playwright for Python with the system browser) against the real `make dev` stack
(infra/local/dev.py: the emulator and hookline-local) and a receiver on 127.0.0.1.

`make test-console` runs them (and `make test-e2e`). Screenshots go to
$HOOKLINE_SCREENSHOTS (default target/console-screenshots); `make console-screenshots`
writes the README's into docs/.
"""

import json
import os
import shutil
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
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
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
    """`make dev` as a user runs it, on a free port."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, PORT=str(self.port), HOOKLINE_ADMIN_KEY=ADMIN, HOOKLINE_RETRY_SCALE="0.01", RUST_LOG="warn")
        self.log = open(ROOT / "target" / "console-stack.log", "w")
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


@pytest.fixture(scope="session")
def stack():
    (ROOT / "target").mkdir(exist_ok=True)
    s = Stack()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def browser():
    executable = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        raise RuntimeError("no chromium on PATH: `apt-get install chromium` (make test-console installs it when run as root)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture()
def project():
    return "t-" + uuid.uuid4().hex[:12]


class Problems:
    """What the page should never do: a script error, a CSP refusal, a JavaScript dialog."""

    def __init__(self, page):
        self.items = []
        page.on("pageerror", lambda e: self.items.append(f"page error: {e}"))
        page.on("console", self.console)
        page.on("dialog", lambda d: (self.items.append(f"dialog: {d.message}"), d.dismiss()))

    def console(self, message):
        text = message.text
        if "Content Security Policy" in text or (message.type == "error" and "Failed to load resource" not in text):
            self.items.append(f"console {message.type}: {text}")


@pytest.fixture()
def context(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    yield ctx
    ctx.close()


@pytest.fixture()
def page(context):
    p = context.new_page()
    p.set_default_timeout(15_000)
    problems = Problems(p)
    yield p
    assert problems.items == [], problems.items


@pytest.fixture(scope="session")
def screenshots():
    where = Path(os.environ.get("HOOKLINE_SCREENSHOTS") or ROOT / "target" / "console-screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where
