"""Generated clients, driven through what a user does first: create, list, get, patch,
rotate, post an event, read its status and its attempts."""

import importlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ADMIN, OUT, ROOT, run_generator, signed_by, wait_until

HERE = Path(__file__).resolve().parent


def test_the_python_client_generates_without_a_warning_and_drives_the_stack(stack, receiver, project, spec):
    out = OUT / "python"
    shutil.rmtree(out, ignore_errors=True)
    bin_dir = Path(sys.executable).parent
    run_generator([str(bin_dir / "openapi-python-client"), "generate", "--path", str(spec), "--output-path", str(out)])
    sys.path.insert(0, str(out))
    for name in [m for m in sys.modules if m.startswith("hookline_api_client")]:
        del sys.modules[name]
    client_mod = importlib.import_module("hookline_api_client")
    models = importlib.import_module("hookline_api_client.models")
    create_webhook = importlib.import_module("hookline_api_client.api.webhooks.create_webhook")
    list_webhooks = importlib.import_module("hookline_api_client.api.webhooks.list_webhooks")
    get_webhook = importlib.import_module("hookline_api_client.api.webhooks.get_webhook")
    patch_webhook = importlib.import_module("hookline_api_client.api.webhooks.patch_webhook")
    rotate_webhook = importlib.import_module("hookline_api_client.api.webhooks.rotate_webhook")
    list_attempts = importlib.import_module("hookline_api_client.api.webhooks.list_attempts")
    post_event = importlib.import_module("hookline_api_client.api.events.post_event")
    get_event = importlib.import_module("hookline_api_client.api.events.get_event")

    client = client_mod.AuthenticatedClient(base_url=stack.url, token=ADMIN, raise_on_unexpected_status=True)

    created = create_webhook.sync(
        project,
        client=client,
        body=models.WebhookCreate(
            name="python client",
            url=f"{receiver.url}/py/{{{{ user.id }}}}",
            events=["order.placed"],
            headers=models.Headers.from_dict({"X-Client": "python", "X-Old": "gone soon"}),
            body=models.JsonBody(
                type_=models.JsonBodyType.JSON,
                fields=models.JsonBodyFields.from_dict({"order": "{{ data.order_id }}", "who": "{{ user.id }}"}),
            ),
            auth=models.BearerAuthInput(type_=models.BearerAuthInputType.BEARER, generate=True),
            timeout_seconds=5,
        ),
    )
    assert isinstance(created, models.Webhook), created
    assert created.signing_secret.startswith("whsec_")
    assert isinstance(created.auth, models.BearerAuthView) and created.auth.generated
    token = created.auth.token
    assert token.startswith("hlt_") and "*" not in token

    listed = list_webhooks.sync(project, client=client)
    assert [w.id for w in listed.data] == [created.id]
    assert "*" in listed.data[0].signing_secret, "a listing masks the secret"

    got = get_webhook.sync(project, created.id, client=client)
    assert got.name == "python client" and got.events == ["order.placed"]
    assert got.body.fields.additional_properties == {"order": "{{ data.order_id }}", "who": "{{ user.id }}"}
    assert isinstance(got.auth, models.BearerAuthView) and got.auth.token != token

    patched = patch_webhook.sync(
        project,
        created.id,
        client=client,
        body=models.WebhookUpdate(name="python client, renamed", headers=models.HeadersPatch.from_dict({"X-Old": None, "X-Patched": "yes"})),
    )
    assert patched.name == "python client, renamed"
    assert patched.headers.additional_properties == {"X-Client": "python", "X-Patched": "yes"}
    assert patched.version == created.version + 1

    # Rotation renews the signing secret and a generated token, both shown once.
    rotated = rotate_webhook.sync(project, created.id, client=client)
    assert rotated.signing_secret.startswith("whsec_") and rotated.signing_secret != created.signing_secret
    assert isinstance(rotated.auth, models.BearerAuthView) and rotated.auth.token != token
    token = rotated.auth.token

    accepted = post_event.sync(
        project,
        client=client,
        body=models.EventInput(type_="order.placed", data=models.EventInputDataType0.from_dict({"order_id": "o-py"}), user=models.User(id="u-py")),
    )
    assert accepted.matched == 1 and not accepted.duplicate

    [delivery] = receiver.wait_for("/py/u-py")
    assert delivery["headers"]["authorization"] == f"Bearer {token}"
    assert delivery["headers"]["x-patched"] == "yes" and "x-old" not in delivery["headers"]
    assert json.loads(delivery["body"]) == {"order": "o-py", "who": "u-py"}
    assert signed_by(rotated.signing_secret, delivery), "signed with the rotated secret"
    assert signed_by(created.signing_secret, delivery), "and, for 24 hours, with the previous one"

    status = wait_until(
        lambda: (s := get_event.sync(project, accepted.event_id, client=client)) and s.deliveries and s.deliveries[0].status == models.DeliveryStatus.DELIVERED and s,
        what="event delivered",
    )
    assert [(d.webhook_id, d.attempts, d.last_status_code) for d in status.deliveries] == [(created.id, 1, 200)]

    attempts = list_attempts.sync(project, created.id, client=client)
    assert [(a.event_id, a.attempt, a.status, a.status_code) for a in attempts.data] == [(accepted.event_id, 1, models.AttemptStatus.DELIVERED, 200)]

    # An error answer is parsed into the documented shape, naming the field.
    refused = create_webhook.sync_detailed(project, client=client, body=models.WebhookCreate(name="bad", url="not a url", events=["order.placed"]))
    assert refused.status_code == 422 and isinstance(refused.parsed, models.Error)
    assert refused.parsed.error.field == "url"


def test_the_typescript_client_generates_without_a_warning_and_drives_the_stack(stack, receiver, project, spec):
    npm = shutil.which("npm")
    assert npm, "Node.js with npm is needed for the TypeScript client"
    if not (HERE / "node_modules" / ".package-lock.json").exists():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, timeout=600)
    out = OUT / "typescript"
    shutil.rmtree(out, ignore_errors=True)
    bin_dir = HERE / "node_modules" / ".bin"
    run_generator([str(bin_dir / "openapi-ts"), "-i", str(spec), "-o", str(out / "client"), "-c", "@hey-api/client-fetch"], cwd=HERE)
    shutil.copy(HERE / "roundtrip.ts", out / "roundtrip.ts")
    shutil.copy(HERE / "tsconfig.json", out / "tsconfig.json")
    # Type-checked as a user's code would be: a wrong field or a missing required one fails here.
    compiled = subprocess.run([str(bin_dir / "tsc"), "-p", str(out)], capture_output=True, text=True, timeout=300)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    env = dict(os.environ, HOOKLINE_URL=stack.url, HOOKLINE_KEY=ADMIN, PROJECT=project, RECEIVER=receiver.url)
    ran = subprocess.run(["node", str(out / "dist" / "roundtrip.js")], env=env, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    result = json.loads(ran.stdout.strip().splitlines()[-1])

    [delivery] = receiver.wait_for("/ts/u-ts")
    assert delivery["headers"]["authorization"] == f"Bearer {result['token']}"
    assert delivery["headers"]["x-patched"] == "yes" and "x-old" not in delivery["headers"]
    assert json.loads(delivery["body"]) == {"order": "o-ts", "who": "u-ts"}
    assert signed_by(result["rotated_secret"], delivery)
    assert result["attempts"] == [[result["event_id"], 1, "delivered", 200]]


def test_the_generators_are_the_pinned_ones():
    """The versions the README promises are the ones installed (requirements-dev.txt, package-lock.json)."""
    pins = (ROOT / "requirements-dev.txt").read_text()
    version = importlib.metadata.version("openapi-python-client")
    assert f"openapi-python-client=={version}" in pins
    lock = json.loads((HERE / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/@hey-api/openapi-ts"]["version"] == json.loads((HERE / "package.json").read_text())["devDependencies"]["@hey-api/openapi-ts"]

