#!/usr/bin/env python3
"""`make dev`: Hookline on this machine. Starts the emulator (infra/local/emulator.py) with
the template's tables and queues, then the local runtime (target/debug/hookline-local)
pointed at it, and stops both on Ctrl-C or SIGTERM. Data lives as long as the emulator:
stopping `make dev` forgets every webhook, key and event.

Environment: PORT (3000), HOOKLINE_ADMIN_KEY (local-admin-key), HOOKLINE_RETRY_SCALE (1).
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    port = os.environ.get("PORT", "3000")
    admin_key = os.environ.get("HOOKLINE_ADMIN_KEY", "local-admin-key")
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    runtime_bin = target_dir / "debug" / "hookline-local"
    if not runtime_bin.exists():
        print(f"{runtime_bin} is missing: run `make dev`, which builds it", file=sys.stderr)
        return 1

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
        "HOOKLINE_ALLOW_PRIVATE_TARGETS": "true",
        "PORT": port,
    })
    env.setdefault("HOOKLINE_RETRY_SCALE", "1")

    url = f"http://127.0.0.1:{port}"
    print(f"""
Hookline is running locally.
  API        {url}
  admin key  {admin_key}
  emulator   {ready['endpoint']} (DynamoDB + SQS; data lives until you stop this)

  curl -s -X POST {url}/v1/projects/demo/webhooks \\
    -H 'Authorization: Bearer {admin_key}' -H 'Content-Type: application/json' \\
    -d '{{"name":"demo","url":"http://127.0.0.1:9000/hook","events":["*"]}}'

Ctrl-C stops everything.
""", flush=True)

    runtime = subprocess.Popen([str(runtime_bin)], env=env)

    def stop(signum, _frame):
        if runtime.poll() is None:
            runtime.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = runtime.wait()
    emulator.terminate()
    try:
        emulator.wait(timeout=10)
    except subprocess.TimeoutExpired:
        emulator.kill()
    return code


if __name__ == "__main__":
    sys.exit(main())
