"""The generated clients' round trips (make test-clients, and make test-e2e): clients
generated from the running stack's /v1/openapi.json by openapi-python-client and
@hey-api/openapi-ts (versions pinned in requirements-dev.txt and package.json), each
driving the real `make dev` stack.
"""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import ADMIN, ROOT, project, receiver, stack_fixture  # noqa: E402,F401

stack = stack_fixture("clients-stack.log")
OUT = ROOT / "target" / "clients"


@pytest.fixture(scope="session")
def spec(stack) -> Path:
    """The document as a user fetches it from their running stack."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "openapi.json"
    with urllib.request.urlopen(f"{stack.url}/v1/openapi.json", timeout=10) as r:
        path.write_bytes(r.read())
    return path


def run_generator(argv: list[str], cwd: Path = ROOT) -> str:
    """Runs a generator; any warning in its output fails the test, as a refusal would."""
    # The venv's tools (openapi-python-client runs ruff) first, however pytest was started.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{argv[0]} failed:\n{output}"
    lowered = output.lower()
    assert "warn" not in lowered and "error" not in lowered and "will not be generated" not in lowered, f"{argv[0]} warned:\n{output}"
    return output


def signed_by(secret: str, request: dict) -> bool:
    """Whether a delivery carries a Standard Webhooks signature made with `secret`."""
    h = request["headers"]
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{h['webhook-id']}.{h['webhook-timestamp']}.{request['body']}".encode()
    expected = "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    return expected in h["webhook-signature"].split(" ")


def wait_until(check, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} not met after {timeout} s")


def pretty(value) -> str:
    return json.dumps(value, indent=2, default=str)
