#!/usr/bin/env python3
"""Hookline's local AWS: the moto emulator on loopback, with the tables and queues of
infra/template.yaml created in it — read from the template itself, so AWS and local
cannot drift.

    emulator.py serve [--port N] [--host ADDR] [--prefix P] [--parent-pid PID]

Starts the emulator (port 0 picks a free one), creates every AWS::DynamoDB::Table and
AWS::SQS::Queue of the template under the name `<prefix>-<LogicalId>`, then prints one
line `READY <json>` with the endpoint and the environment the functions read (the
template's Globals.Function.Environment, with each !Ref to a table or queue resolved
to the local name or URL). It serves until SIGINT/SIGTERM, or until --parent-pid exits
(so an emulator started by a test never outlives it). State lives as long as it runs.

It listens on 127.0.0.1 unless --host says otherwise: `sam local` runs the functions in
Docker containers, which reach the host through host.docker.internal, so for them it
must listen where that name points (`--host 0.0.0.0`; see the README's `sam local`).
Anyone who can reach that address can read and write the emulated tables.

Two of moto's ways are mended, each where it departs from AWS in a way the tests feel:
- each DynamoDB request is applied whole (`each_dynamodb_request_whole`). moto serves
  each request on its own thread and updates an item in place with no lock, so two
  concurrent writes to one item could lose one (3 of 400 concurrent appends to one
  item, in a run of 8 threads), or both pass one condition; DynamoDB applies each
  write to an item, condition included, atomically.
- one of its costs is taken out (`retention_check_in_constant_time`): its
  ReceiveMessage recomputes every attribute of the queue, each a pass over all its
  messages, for every message it hands out: with a thousand messages queued, a
  receive of ten took 600 ms of its one (GIL-bound) core, and the emulator, not
  Hookline, set the pace of every end-to-end test with a backlog.
"""

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_template(path: Path) -> dict:
    from cfnlint.decode import decode

    template, errors = decode(str(path))
    if errors or template is None:
        raise SystemExit(f"cannot read {path}: {errors}")
    return template


def client(service: str, endpoint: str):
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def create_resources(template: dict, endpoint: str, prefix: str) -> dict:
    """Creates the template's queues and tables; returns logical id -> {ref, arn}."""
    resources = template["Resources"]
    sqs = client("sqs", endpoint)
    dynamo = client("dynamodb", endpoint)
    made: dict = {}

    def resolve(value):
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            logical, attr = value["Fn::GetAtt"]
            return made[logical][attr.lower()]
        if isinstance(value, dict) and "Ref" in value:
            return made[value["Ref"]]["ref"]
        return value

    queues = {k: r for k, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}
    # Dead-letter targets first: a redrive policy names their ARN.
    ordered = sorted(queues, key=lambda k: "RedrivePolicy" in queues[k].get("Properties", {}))
    for logical in ordered:
        props = queues[logical].get("Properties", {})
        attributes = {}
        for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds",
                    "ReceiveMessageWaitTimeSeconds", "MaximumMessageSize"):
            if key in props:
                attributes[key] = str(props[key])
        if "RedrivePolicy" in props:
            policy = {k: resolve(v) for k, v in props["RedrivePolicy"].items()}
            attributes["RedrivePolicy"] = json.dumps(policy)
        name = f"{prefix}-{logical}"
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        made[logical] = {"ref": url, "arn": arn, "queuename": name}

    for logical, r in resources.items():
        if r["Type"] != "AWS::DynamoDB::Table":
            continue
        props = r["Properties"]
        name = f"{prefix}-{logical}"
        args = {
            "TableName": name,
            "AttributeDefinitions": [dict(a) for a in props["AttributeDefinitions"]],
            "KeySchema": [dict(k) for k in props["KeySchema"]],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if "GlobalSecondaryIndexes" in props:
            args["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": g["IndexName"],
                    "KeySchema": [dict(k) for k in g["KeySchema"]],
                    "Projection": dict(g["Projection"]),
                }
                for g in props["GlobalSecondaryIndexes"]
            ]
        dynamo.create_table(**args)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamo.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        arn = dynamo.describe_table(TableName=name)["Table"]["TableArn"]
        made[logical] = {"ref": name, "arn": arn}
    return made


def function_env(template: dict, made: dict) -> dict:
    """The functions' environment with the local resources' names and URLs."""
    variables = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    env = {}
    for key, value in variables.items():
        if isinstance(value, dict) and "Ref" in value and value["Ref"] in made:
            env[key] = made[value["Ref"]]["ref"]
    return env


def parent_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def each_dynamodb_request_whole() -> None:
    """Each DynamoDB request handled whole under one lock, from parsing to its answer's
    body: moto updates an item in place (and creates a missing one empty first), so
    only a lock around the request as a whole keeps a concurrent write from being
    lost, a condition from passing twice, or a read from seeing half an update. moto
    runs on one core (the GIL) anyway, so little is serialised that was not already."""
    from functools import wraps

    from moto.dynamodb.responses import DynamoHandler

    lock = threading.Lock()
    unlocked = DynamoHandler.call_action

    @wraps(unlocked)
    def call_action(self):
        with lock:
            return unlocked(self)

    DynamoHandler.call_action = call_action


def retention_check_in_constant_time() -> None:
    """moto's check that a received message is within its queue's retention period, as
    moto decides it (sent + MessageRetentionPeriod > now), reading the one attribute
    instead of computing all of them (each a pass over the queue's messages)."""
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def within_retention(self, queue_name, message):
        queue = self.get_queue(queue_name)
        return queue.message_retention_period + message.sent_timestamp / 1000 > unix_time()

    SQSBackend.is_message_valid_based_on_retention_period = within_retention


def serve(args) -> None:
    import logging

    from moto.server import ThreadedMotoServer

    each_dynamodb_request_whole()
    retention_check_in_constant_time()

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = args.port or free_port()
    server = ThreadedMotoServer(ip_address=args.host, port=port, verbose=False)
    server.start()
    # Where this process reaches it (the tables and queues are created through it).
    endpoint = f"http://127.0.0.1:{port}"
    template = load_template(Path(args.template))
    made = create_resources(template, endpoint, args.prefix)
    ready = {"endpoint": endpoint, "env": function_env(template, made), "resources": made}
    print("READY " + json.dumps(ready), flush=True)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set():
        if args.parent_pid and not parent_alive(args.parent_pid):
            break
        stop.wait(0.5)
    server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="start the emulator and create the template's resources")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--host", default="127.0.0.1", help="the address to listen on (0.0.0.0 for sam local's containers)")
    s.add_argument("--prefix", default="hookline-local")
    s.add_argument("--parent-pid", type=int, default=0)
    s.add_argument("--template", default=str(TEMPLATE))
    t = sub.add_parser("template-json", help="print the template, intrinsic functions decoded, as JSON")
    t.add_argument("--template", default=str(TEMPLATE))
    args = parser.parse_args()
    if args.command == "serve":
        serve(args)
    elif args.command == "template-json":
        print(json.dumps(load_template(Path(args.template)), default=str))


if __name__ == "__main__":
    sys.exit(main())
