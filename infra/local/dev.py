#!/usr/bin/env python3
"""`make dev`: Hookline on this machine. Starts the emulator (infra/local/emulator.py) with
the template's tables and queues, then the local runtime (target/debug/hookline-local)
pointed at it, and stops both on Ctrl-C or SIGTERM. Data lives as long as the emulator:
stopping `make dev` forgets every webhook, key and event; a crash of the runtime does
not (it is restarted against the same emulator).

Environment: PORT (3000), HOOKLINE_ADMIN_KEY (local-admin-key), HOOKLINE_RETRY_SCALE (1),
HOOKLINE_ALLOW_PRIVATE_TARGETS (true here: webhooks may target 127.0.0.1; set false to
see production's refusals), HOOKLINE_HEALTH_HOLD_SECONDS (0 here: health counts every
batch at once, where a deployment holds a healthy webhook's successes for a minute), and
any other variable the functions read.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# A runtime that crashes this often this fast is not going to start: stop trying.
MAX_RESTARTS, RESTART_WINDOW = 5, 60.0


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v1/health", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def main() -> int:
    port = os.environ.get("PORT", "3000")
    if not port.isdigit() or not 0 < int(port) < 65536:
        print(f"PORT must be a port number, not {port!r}", file=sys.stderr)
        return 2
    if not port_free(int(port)):
        print(f"port {port} is in use; set PORT=… to another (e.g. PORT={int(port) + 1} make dev)", file=sys.stderr)
        return 1
    admin_key = os.environ.get("HOOKLINE_ADMIN_KEY", "local-admin-key")
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    runtime_bin = target_dir / "debug" / "hookline-local"
    if not runtime_bin.exists():
        print(f"{runtime_bin} is missing: run `make dev`, which builds it", file=sys.stderr)
        return 1

    print("starting the emulator (moto: DynamoDB + SQS) …", flush=True)
    emulator = subprocess.Popen(
        [sys.executable, str(ROOT / "infra/local/emulator.py"), "serve", "--parent-pid", str(os.getpid())],
        stdout=subprocess.PIPE,
        text=True,
    )
    ready = None
    for line in emulator.stdout:
        if line.startswith("READY "):
            ready = json.loads(line[len("READY "):])
            break
    if ready is None:
        print("the emulator did not start", file=sys.stderr)
        return 1

    env = dict(os.environ)
    env.update(ready["env"])
    env.update({
        "AWS_ENDPOINT_URL": ready["endpoint"],
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_REGION": "us-east-1",
        "HOOKLINE_ADMIN_KEY": admin_key,
        "PORT": port,
    })
    # Local defaults; what the caller set explicitly wins.
    env.setdefault("HOOKLINE_ALLOW_PRIVATE_TARGETS", "true")
    env.setdefault("HOOKLINE_RETRY_SCALE", "1")
    env.setdefault("HOOKLINE_HEALTH_HOLD_SECONDS", "0")

    url = f"http://127.0.0.1:{port}"
    stopping = False
    runtime = None

    def stop(signum, _frame):
        nonlocal stopping
        stopping = True
        if runtime is not None and runtime.poll() is None:
            runtime.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    restarts: list[float] = []
    code = 0
    announced = False
    while not stopping:
        print(f"starting hookline-local on {url} …", flush=True)
        runtime = subprocess.Popen([str(runtime_bin)], env=env)
        while not announced and runtime.poll() is None and not stopping:
            if answers(url):
                announced = True
                print(f"""
Hookline is running locally.
  API        {url}   (index at {url}/, OpenAPI at {url}/v1/openapi.json)
  console    {url}/console   (sign in with the admin key and any project name)
  admin key  {admin_key}
  emulator   {ready['endpoint']} (DynamoDB + SQS; data lives until you stop this)
  private targets {'allowed' if env['HOOKLINE_ALLOW_PRIVATE_TARGETS'].lower() in ('true', '1', 'yes') else 'refused'}

  curl -s -X POST {url}/v1/projects/demo/webhooks \\
    -H 'Authorization: Bearer {admin_key}' -H 'Content-Type: application/json' \\
    -d '{{"name":"demo","url":"http://127.0.0.1:9000/hook","events":["*"]}}'

Ctrl-C stops everything.
""", flush=True)
                break
            time.sleep(0.1)
        code = runtime.wait()
        if stopping:
            break
        now = time.monotonic()
        restarts = [t for t in restarts if now - t < RESTART_WINDOW] + [now]
        if len(restarts) > MAX_RESTARTS:
            print(f"hookline-local exited (code {code}) {len(restarts)} times in a minute; giving up", file=sys.stderr)
            break
        print(f"hookline-local exited (code {code}); restarting it, the emulator's data is kept", file=sys.stderr, flush=True)
        time.sleep(1)

    emulator.terminate()
    try:
        emulator.wait(timeout=10)
    except subprocess.TimeoutExpired:
        emulator.kill()
    return 0 if stopping else (code or 1)


if __name__ == "__main__":
    sys.exit(main())
