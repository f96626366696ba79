"""A receiver verifies Hookline's deliveries the way receivers do: with the Standard
Webhooks reference libraries (PyPI's and npm's `standardwebhooks`) and Svix's (`svix`),
versions pinned in requirements-dev.txt and package.json, not with Hookline's own
arithmetic. Covers the standard envelope, JSON fields and raw JSON with non-ASCII text,
a secret brought from another sender, and a rotation's two signatures."""

import base64
import importlib.metadata
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import standardwebhooks
import svix.webhooks

from conftest import ROOT

HERE = Path(__file__).resolve().parent


class Refused(Exception):
    """The library refused the request."""


def python_library(webhook, error):
    def check(secret: str, request: dict):
        try:
            # Svix's returns nothing, Standard Webhooks' the parsed body.
            webhook(secret).verify(request["body"], request["headers"])
        except error as e:
            raise Refused(str(e)) from e

    return check


def npm_standardwebhooks(secret: str, request: dict):
    node = shutil.which("node")
    assert node, "Node.js is needed for npm's standardwebhooks"
    if not (HERE / "node_modules" / "standardwebhooks").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, timeout=600)
    ran = subprocess.run(
        [node, str(HERE / "verify.mjs")],
        input=json.dumps({"secret": secret, "body": request["body"], "headers": request["headers"]}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    answer = json.loads(ran.stdout)
    if not answer["verified"]:
        raise Refused(answer["error"])
    assert answer["payload"] == json.loads(request["body"])


VERIFIERS = {
    "standardwebhooks": python_library(standardwebhooks.Webhook, standardwebhooks.WebhookVerificationError),
    "svix": python_library(svix.webhooks.Webhook, svix.webhooks.WebhookVerificationError),
    "standardwebhooks (npm)": npm_standardwebhooks,
}


def verify(library: str, secret: str, request: dict):
    """The received payload, once the library has verified it (it raises otherwise)."""
    VERIFIERS[library](secret, request)
    return json.loads(request["body"])


def refused(library: str, secret: str, request: dict) -> bool:
    try:
        verify(library, secret, request)
    except Refused:
        return True
    return False


def delivered(stack, receiver, project: str, path: str, event: dict, count: int = 1):
    stack.event(project, event)
    return receiver.wait_for(path, count)[count - 1]


@pytest.mark.parametrize("library", sorted(VERIFIERS))
def test_the_libraries_receivers_use_verify_every_kind_of_body(stack, receiver, project, library):
    event = {"id": "ev-order", "type": "order.placed", "data": {"id": "A-1", "note": "주문 완료 ✓", "total": 12.5}}
    envelope = stack.webhook(project, name="envelope", url=f"{receiver.url}/{project}/envelope", events=["order.placed"])
    fields = stack.webhook(
        project,
        name="fields",
        url=f"{receiver.url}/{project}/fields",
        events=["order.placed"],
        body={"type": "json", "fields": {"order": "{{ data.id }}", "note": "{{ data.note }}"}},
    )
    raw = stack.webhook(
        project,
        name="raw",
        url=f"{receiver.url}/{project}/raw",
        events=["order.placed"],
        body={"type": "raw", "template": '{"text": "{{ data.note }} / {{ data.total }}"}', "content_type": "application/json"},
    )
    stack.event(project, event)
    got = {name: receiver.wait_for(f"/{project}/{name}")[0] for name in ("envelope", "fields", "raw")}

    payload = verify(library, envelope["signing_secret"], got["envelope"])
    assert payload["id"] == event["id"] and payload["type"] == "order.placed"
    assert payload["data"] == event["data"]
    assert verify(library, fields["signing_secret"], got["fields"]) == {"order": "A-1", "note": "주문 완료 ✓"}
    assert verify(library, raw["signing_secret"], got["raw"]) == {"text": "주문 완료 ✓ / 12.5"}

    # The libraries do refuse: another webhook's secret, a changed body, an old timestamp.
    assert refused(library, fields["signing_secret"], got["envelope"])
    tampered = dict(got["envelope"], body=got["envelope"]["body"].replace("A-1", "A-2"))
    assert refused(library, envelope["signing_secret"], tampered)
    stale = dict(got["envelope"], headers=dict(got["envelope"]["headers"], **{"webhook-timestamp": str(int(got["envelope"]["headers"]["webhook-timestamp"]) - 600)}))
    assert refused(library, envelope["signing_secret"], stale)


@pytest.mark.parametrize("library", sorted(VERIFIERS))
def test_a_brought_secret_and_both_secrets_of_a_rotation_verify(stack, receiver, project, library):
    # A secret as another sender made it (Svix's are 24 bytes; this one 32).
    brought = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    hook = stack.webhook(project, name="moved", url=f"{receiver.url}/{project}/moved", events=["a"], signing_secret=brought)
    first = delivered(stack, receiver, project, f"/{project}/moved", {"id": "ev-1", "type": "a", "data": {}})
    assert verify(library, brought, first)["id"] == "ev-1"

    status, rotated = stack.api("POST", f"/v1/projects/{project}/webhooks/{hook['id']}/rotate")
    assert status == 200, rotated
    new = rotated["signing_secret"]
    assert new != brought
    second = delivered(stack, receiver, project, f"/{project}/moved", {"id": "ev-2", "type": "a", "data": {}}, count=2)
    assert len(second["headers"]["webhook-signature"].split(" ")) == 2, second["headers"]
    # A receiver still on the old secret, and one already on the new, both accept it.
    assert verify(library, brought, second)["id"] == "ev-2"
    assert verify(library, new, second)["id"] == "ev-2"
    assert refused(library, "whsec_" + base64.b64encode(os.urandom(32)).decode(), second)


def test_the_verifiers_are_the_pinned_ones():
    """The libraries' versions are the ones requirements-dev.txt and package.json pin."""
    pins = (ROOT / "requirements-dev.txt").read_text()
    for name in ("standardwebhooks", "svix"):
        assert f"{name}=={importlib.metadata.version(name)}" in pins, name
    lock = json.loads((HERE / "package-lock.json").read_text())
    wanted = json.loads((HERE / "package.json").read_text())["devDependencies"]["standardwebhooks"]
    assert lock["packages"]["node_modules/standardwebhooks"]["version"] == wanted
