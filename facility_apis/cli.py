"""``facility-apis``: list facilities, show schemas, validate credentials, dry-run a submission,
start a new facility, run the gateway (serve, worker, client, keygen), and run the demo.

Exit codes, one meaning each: 0 success; 1 the run failed (a facility or the network failed, a
submission got no remote id, a gateway verb could not start or stopped); 2 the input was refused
(a bad command line, an unknown facility, an unreadable file, altdata, a payload or a setting that
breaks a rule, a request the facility rejects): fix what was given and run again. A closed output
(``| head -1``) ends a command quietly with 1."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .core.egress import EgressPolicy
from .core.errors import ConfigurationError, FacilityError, UnknownFacility, ValidationFailed
from .core.interface import REMOTE_VALIDATE, Allocation, Facility, FollowupRequest, Target
from .core.operations import perform
from .core.outcome import State
from .core.registry import default_registry
from .core.transport import Transport
from .gateway.commands import add_commands as add_gateway_commands

EXIT_FAILED = 1
EXIT_INVALID = 2


class InvalidInput(Exception):
    """Input the command refuses before doing anything (an unreadable file, an option the facility
    does not offer, unusable settings): ``main`` prints ``error: <message>`` and exits 2."""


def _read_json(path: str, what: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        document = json.loads(text)
    except OSError as exc:
        raise InvalidInput(f"cannot read {what} file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{what} file {path} is not JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(document, dict):
        raise InvalidInput(f"{what} file {path} must hold a JSON object")
    return document


def _egress(args: argparse.Namespace) -> EgressPolicy:
    try:
        return EgressPolicy(tuple(getattr(args, "allow", None) or ()))
    except ValueError as exc:
        raise InvalidInput(f"--allow: {exc}") from None


def facility_settings(cls: type[Facility], config: dict[str, Any] | None, base_url: str | None) -> dict[str, Any]:
    """The settings ``--config`` (a JSON object, as the gateway's ``facilities.<name>``) and
    ``--base-url`` give: ``--base-url`` sets the facility's own service-URL key
    (``Facility.base_url_key``). ``InvalidInput`` for a facility with several endpoints or none
    (naming the keys to give in ``--config``), or when both give that key."""
    settings = dict(config or {})
    if base_url is None:
        return settings
    key = cls.base_url_key
    if key is None:
        urls = sorted(k for k in cls.config_keys if k.endswith("_url"))
        if urls:
            raise InvalidInput(f"--base-url: {cls.name} has several service URLs; give {', '.join(urls)} in a --config file instead")
        raise InvalidInput(f"--base-url: {cls.name} takes no service URL")
    if key in settings and settings[key] != base_url:
        raise InvalidInput(f"--base-url and the --config file's {key} differ: give one of them")
    settings[key] = base_url
    return settings


def _facility(args: argparse.Namespace, egress: EgressPolicy | None = None) -> Facility:
    """The facility ``args.name`` made with the run's settings (``--config``, ``--base-url`` where
    the command has them); unusable settings are ``InvalidInput``."""
    cls = default_registry().get(args.name)
    config = _read_json(args.config, "config") if getattr(args, "config", None) else None
    settings = facility_settings(cls, config, getattr(args, "base_url", None))
    try:
        return cls(settings or None, egress=egress)
    except ConfigurationError as exc:
        raise InvalidInput(str(exc)) from None


def cmd_list(args: argparse.Namespace) -> int:
    rows = []
    for cls in default_registry().all():
        implemented = [op for op, yes in cls.implements().items() if yes]
        rows.append({"name": cls.name, "title": cls.title, "kind": cls.kind.value, "implements": implemented})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        name_width = max((len(row["name"]) for row in rows), default=0)
        kind_width = max((len(row["kind"]) for row in rows), default=0)
        for row in rows:
            print(f"{row['name']:<{name_width}}  {row['kind']:<{kind_width}}  {row['title']}  [{', '.join(row['implements'])}]")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    facility = _facility(args)
    schema = {"altdata": facility.altdata_schema, "request": facility.request_schema, "ui": facility.ui_schema}[args.which]()
    print(json.dumps(schema, indent=2))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    facility = _facility(args)
    errors: list[str] = []
    try:
        facility.validate_altdata(_read_json(args.altdata, "altdata"), instrument_name=args.instrument)
    except ValidationFailed as exc:
        errors += [f"altdata {error}" for error in exc.errors]
    if args.payload:
        try:
            facility.refuse_a_closed_window(facility.validate_payload(_read_json(args.payload, "payload")))
        except ValidationFailed as exc:
            errors += [f"payload {error}" for error in exc.errors]
    for line in errors:
        print(line)
    if not errors:
        print("valid")
    return EXIT_INVALID if errors else 0


def cmd_submit(args: argparse.Namespace) -> int:
    egress = _egress(args)
    facility = _facility(args, egress)
    if args.remote_validate and not facility.implements()["remote_validate"]:
        print(f"error: {facility.name} offers no remote validation; use --dry-run to see the request", file=sys.stderr)
        return EXIT_INVALID
    altdata = _read_json(args.altdata, "altdata")
    payload = _read_json(args.payload, "payload") if args.payload else {}
    with Transport(secrets=facility.secrets(altdata), egress=egress) as transport:
        # Every failing field is reported: the coordinates', the altdata's and the payload's.
        failures: list[ValidationFailed] = []
        target: Target | None = None
        try:
            target = Target(args.target_id, args.ra, args.dec, aliases=tuple(args.alias or ()))
        except ValidationFailed as exc:
            failures.append(exc)
        try:
            altdata = facility.validate_altdata(altdata)
        except ValidationFailed as exc:
            failures.append(exc)
        try:
            payload = facility.validate_payload(payload, target)
        except ValidationFailed as exc:
            failures.append(exc)
        if failures or target is None:
            for failure in failures:
                for error in failure.errors:
                    print(f"{failure.what} {error}")
            return EXIT_INVALID
        request = FollowupRequest(None, target, Allocation(None, altdata, pi=args.pi), payload, requester=args.requester)
        if args.dry_run:
            print(transport.render(facility.prepare(request)), end="")  # its ValidationFailed: main, exit 2
            return 0
        if args.remote_validate:
            return _remote_validate(facility, request, transport)
        outcome = perform(facility, "submit", request, transport)
    print(outcome.status)
    if outcome.remote_id:
        print(f"remote id: {outcome.remote_id}")
        return 0
    return EXIT_INVALID if outcome.state is State.REJECTED else EXIT_FAILED


def _remote_validate(facility: Facility, request: FollowupRequest, transport: Transport) -> int:
    """Ask the facility about the request without queuing it; print the answer as a status.
    Exit 0 when the facility would accept it, 2 when it would not (or the package's rules refuse
    it), 1 on any other failure."""
    if not facility.implements()[REMOTE_VALIDATE]:
        print(f"error: {facility.name} offers no remote validation; use --dry-run to see the request", file=sys.stderr)
        return EXIT_INVALID
    outcome = perform(facility, REMOTE_VALIDATE, request, transport)
    print(outcome.status)
    if outcome.state is State.PENDING:
        return 0
    return EXIT_INVALID if outcome.state is State.REJECTED else EXIT_FAILED


def cmd_new(args: argparse.Namespace) -> int:
    from .scaffold import ScaffoldError, next_steps, scaffold

    try:
        written = scaffold(args.name, title=args.title, root=args.root, package=args.package)
    except ScaffoldError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    for path in written:
        print(f"wrote {path}")
    print("next:")
    for step in next_steps(args.name, package=args.package):
        print(f"  {step}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(rows=args.rows, run_time=args.run_time, data_dir=args.data_dir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facility-apis", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="list the registered facilities")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(run=cmd_list)

    schema = commands.add_parser("schema", help="print a facility's JSON schema")
    schema.add_argument("name")
    which = schema.add_mutually_exclusive_group()
    which.add_argument("--altdata", dest="which", action="store_const", const="altdata", help="allocation credentials (default)")
    which.add_argument("--request", dest="which", action="store_const", const="request", help="follow-up request form")
    which.add_argument("--ui", dest="which", action="store_const", const="ui", help="the request form's uiSchema")
    schema.set_defaults(run=cmd_schema, which="altdata")

    validate = commands.add_parser("validate", help="check altdata (and a payload); exit 2 when invalid")
    validate.add_argument("name")
    validate.add_argument("--config", metavar="FILE", help="the facility's settings, a JSON object as the gateway's facilities.<name>")
    validate.add_argument("--altdata", required=True, metavar="FILE", help="JSON file ('-' for stdin)")
    validate.add_argument("--payload", metavar="FILE", help="JSON file of a request payload")
    validate.add_argument("--instrument", metavar="NAME", help="the SkyPortal instrument's name, for rules tying the altdata to it")
    validate.set_defaults(run=cmd_validate)

    submit = commands.add_parser("submit", help="submit one request (or show it with --dry-run)")
    submit.add_argument("name")
    submit.add_argument("--ra", type=float, required=True, help="degrees")
    submit.add_argument("--dec", type=float, required=True, help="degrees")
    submit.add_argument("--target-id", default="target", help="the source's name")
    submit.add_argument("--alias", action="append", metavar="NAME", help="another name of the source (repeatable), e.g. a survey's object id")
    submit.add_argument("--altdata", required=True, metavar="FILE")
    submit.add_argument("--pi", help="the allocation's PI, as SkyPortal's allocation gives it (ZTF triggering sends it)")
    submit.add_argument("--requester", metavar="USER", help="the SkyPortal user name of who asks (ZTF triggering, SEDM send it)")
    submit.add_argument("--payload", metavar="FILE")
    submit.add_argument("--config", metavar="FILE", help="the facility's settings, a JSON object as the gateway's facilities.<name>")
    submit.add_argument("--base-url", help="the facility's service URL (its base_url_key; refused for a facility with several)")
    submit.add_argument(
        "--allow", action="append", metavar="ORIGIN_OR_NETWORK",
        help="let calls reach this private origin (http://127.0.0.1:8001) or network (10.0.0.0/8); repeatable",
    )
    checks = submit.add_mutually_exclusive_group()
    checks.add_argument("--dry-run", action="store_true", help="print the exact HTTP request, secrets masked, and send nothing")
    checks.add_argument(
        "--remote-validate", action="store_true",
        help="ask the facility whether it would accept the request, queuing nothing (exit 0 yes, 2 no, 1 failure)",
    )
    submit.set_defaults(run=cmd_submit)

    new = commands.add_parser("new", help="write the files of a new facility (class, schemas, test, docs page)")
    new.add_argument("name", help="registry name: lowercase letters, digits and _")
    new.add_argument("--title", help="the facility's name for people (default: from NAME)")
    new.add_argument("--root", default=".", help="the checkout (or, with --package, the new package's folder) to write into")
    new.add_argument("--package", help="write an outside package of this import name, registered by entry point")
    new.set_defaults(run=cmd_new)

    add_gateway_commands(commands)

    demo = commands.add_parser("demo", help="run the gateway with ATLAS against the local emulator and SkyPortal stub")
    demo.add_argument("--rows", type=int, default=40, help="points in the emulated result file")
    demo.add_argument("--run-time", type=float, default=1.0, help="seconds each emulated task runs")
    demo.add_argument("--data-dir", type=Path, help="where the demo keeps its database and key file (default: the user data dir)")
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; a closed output (``facility-apis schema atlas | head -1``) ends it
    quietly with exit 1."""
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_FAILED


def _discard_stdout() -> None:
    """Point stdout's file descriptor at the null device, so nothing more reaches the closed pipe."""
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a file (a test's replacement): nothing is flushed to a descriptor at exit
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, descriptor)
    os.close(null)


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)  # a bad command line: argparse exits 2
    try:
        return args.run(args)
    except ValidationFailed as exc:  # raised past a command's own report, e.g. by prepare
        for error in exc.errors:
            print(f"{exc.what} {error}")
        return EXIT_INVALID
    except (InvalidInput, UnknownFacility) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except FacilityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
