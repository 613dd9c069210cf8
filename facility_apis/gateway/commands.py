"""The gateway's command-line verbs: ``serve``, ``worker``, ``client add``, ``outbox requeue``, ``keygen``."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import GatewayConfig

from ..core.errors import ConfigurationError

# The gateway's dependencies (SQLAlchemy, cryptography) load only when a gateway verb runs.


def _config(args: argparse.Namespace, **overrides) -> GatewayConfig:
    from .config import GatewayConfig

    return GatewayConfig.load(args.config, database_url=args.database_url, data_dir=args.data_dir, **overrides)


def cmd_keygen(args: argparse.Namespace) -> int:
    from .crypto import generate_key

    print(generate_key())
    return 0


def cmd_client_add(args: argparse.Namespace) -> int:
    from .service import open_store

    store = open_store(_config(args))
    try:
        token = store.clients.add(args.name)
    finally:
        store.close()
    print(token)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ..core.redact import log_to_stderr
    from .runner import serve_forever
    from .service import Gateway

    log_to_stderr()

    gateway = Gateway(_config(args, address=args.address, port=args.port))
    try:
        config = gateway.config

        def ready(port: int) -> None:  # the port is bound: nothing runs before that
            gateway.start_background(worker=not args.no_worker)
            print(f"gateway listening on http://{config.address}:{port}", flush=True)

        serve_forever(gateway.app(), config.address, config.port, ready, stop=gateway.fatal)
    except OSError as exc:  # e.g. the port is taken
        raise ConfigurationError(f"cannot listen on {gateway.config.address}:{gateway.config.port}: {exc.strerror}") from None
    finally:
        gateway.close()
    return _exit_status(gateway)


def _exit_status(gateway) -> int:
    """1 when a loop of the process kept crashing (its supervisor should start it afresh)."""
    if gateway.fatal.is_set():
        print(f"error: {gateway.fatal_reason}", file=sys.stderr, flush=True)
        return 1
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from ..core.redact import log_to_stderr
    from .service import Gateway

    log_to_stderr()

    config = _config(args)
    if args.lease is not None:
        config = dataclasses.replace(config, worker=dataclasses.replace(config.worker, lease=args.lease))
    gateway = Gateway(config)
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    try:
        gateway.start_background()
        print(f"worker {gateway.worker.name} running", flush=True)
        while not (stopped.wait(0.25) or gateway.fatal.is_set()):
            pass
    finally:
        gateway.close()
    return _exit_status(gateway)


def cmd_outbox_requeue(args: argparse.Namespace) -> int:
    from .service import open_store

    store = open_store(_config(args))
    try:
        count = store.outbox.requeue_dead()
    finally:
        store.close()
    print(f"{count} dead message(s) queued for delivery again")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add the gateway's verbs to the ``facility-apis`` parser."""

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--config", metavar="FILE", help="JSON configuration file (see docs/gateway.md)")
        parser.add_argument("--database-url", help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db (default: SQLite in the data dir)")
        parser.add_argument("--data-dir", help="where the embedded SQLite database lives")

    serve = commands.add_parser("serve", help="run the gateway: HTTP API, worker and outbox")
    common(serve)
    serve.add_argument("--address", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 8642)")
    serve.add_argument("--no-worker", action="store_true", help="serve the API only (run workers separately)")
    serve.set_defaults(run=cmd_serve)

    worker = commands.add_parser("worker", help="follow requests and deliver statuses, without the HTTP API")
    common(worker)
    worker.add_argument("--lease", type=float, help="seconds a claimed request is held (default 300)")
    worker.set_defaults(run=cmd_worker)

    client = commands.add_parser("client", help="manage API clients")
    client_verbs = client.add_subparsers(dest="client_command", required=True)
    add = client_verbs.add_parser("add", help="register a client and print its token (shown once)")
    common(add)
    add.add_argument("name")
    add.set_defaults(run=cmd_client_add)

    outbox = commands.add_parser("outbox", help="manage messages owed to SkyPortal")
    outbox_verbs = outbox.add_subparsers(dest="outbox_command", required=True)
    requeue = outbox_verbs.add_parser("requeue", help="send dead messages again (after fixing what SkyPortal refused)")
    common(requeue)
    requeue.set_defaults(run=cmd_outbox_requeue)

    keygen = commands.add_parser("keygen", help="print a new encryption key for FACILITY_APIS_SECRET_KEY")
    keygen.set_defaults(run=cmd_keygen)
