"""MMA: an observation plan the host generated, delivered to a telescope's queue.

SkyPortal makes observation plans for gravitational-wave, neutrino and GRB events (planned fields,
filters, exposures, a validity window) and hands each to a telescope's queue with its MMA
classes' ``send``; this facility is that delivery, not the planning. The plan travels in the
payload (``core/plan.py``). The allocation's ``allocation_type`` chooses how it goes:

- ``API``: ``PUT <endpoint>/api/obsplans`` with the token; removed with ``DELETE`` (``queue.py``);
- ``scp``: written into a directory of an SSH server whose host key the allocation pins, under a
  temporary name then renamed; removed by deleting the file (``sftp.py``);
- ``slack`` and ``email``: a summary (planned observations, filters, window, total exposure) by
  the notifier, the plan attached to the e-mail, linked from Slack (the event's page in
  SkyPortal); "removed" by a cancellation message.

The allocation form is one schema whose branches hold exactly what the code reads. SkyPortal's
own MMA form and code disagree (its form's ``allocation_type``/``endpoint``/``api_token``, its
code's ``type``/``protocol``+``host``+``port``/``access_token``, see the reference's section 13);
allocations holding the code's keys are read as the form's (:meth:`MMAFacility.normalise_altdata`).

``remote_id`` is ``<mode, lower-case>:<what was delivered>``: ``api:<queue name>``, ``scp:<path>``,
``slack:<notice reference>``, ``email:<Message-ID>``, so a removal goes where the plan went.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from ...core.errors import AltdataError, ConfigurationError, FieldError, PayloadError, RemoteError
from ...core.interface import Facility, FollowupRequest, Kind, common_config_keys
from ...core.outcome import Outcome, State
from ...core.plan import PLAN_KEY, ObservationPlan, check_plan, plan_schema
from ...core.schemas import DRAFT7
from ...core.timeutil import from_mjd
from ...core.transport import HTTPCall, MessageCall, Transport
from ...notify import Event, Notifier, notification_altdata
from ...notify.plan import file_stem, plan_notice
from . import queue, sftp

#: The altdata field that chooses the delivery.
MODE = "allocation_type"
#: SkyPortal's MMA code's spellings (its ``send``) and the form's keys they stand for.
LEGACY_MODE = "type"
LEGACY_TOKEN = "access_token"
LEGACY_URL_PARTS = ("protocol", "host", "port")


class MMAFacility(Facility):
    """MMA observation plans (SkyPortal's ``MMAAPI``).

    Configuration: ``notify`` (``facility_apis.notify``: SkyPortal's URL for the event link,
    Slack's base URL, the SMTP server e-mail allocations need) and ``ssh_timeout`` (seconds for
    the SSH connection, the login and each transfer step; default 30).
    """

    name: ClassVar[str] = "mma"
    title: ClassVar[str] = "MMA observation plans"
    kind: ClassVar[Kind] = Kind.OBSERVATION_PLAN
    window_field: ClassVar[str] = f"{PLAN_KEY}.validity_window_mjd"
    skyportal_class: ClassVar[str] = "MMAAPI"
    #: An SSH key (and the scp password) go to the SSH server, never in an HTTP header.
    secrets_in_bodies: ClassVar[frozenset[str]] = frozenset({"private_key", "password"})
    setup_url: ClassVar[str] = "https://skyportal.io/docs/followup.html"
    example_remote_id: ClassVar[str] = "api:ToO_S250818k_ZTF_night1"
    config_keys: ClassVar[Mapping[str, str]] = {
        **common_config_keys("notify"),
        "ssh_timeout": "seconds for the SSH connection, the login and each transfer step, in (0, 600] (default 30)",
    }

    def __init__(self, config: Mapping[str, Any] | None = None, **options: Any):
        super().__init__(config, **options)
        timeout = self.config.get("ssh_timeout", sftp.DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 600:
            raise ConfigurationError("facilities.mma.ssh_timeout must be a number of seconds in (0, 600]")
        self.ssh_timeout = float(timeout)
        self.notifier = Notifier(self.config, egress=self.egress)

    # -- the allocation ------------------------------------------------------------------------

    @classmethod
    def altdata_schema(cls) -> dict[str, Any]:
        """The ``API`` and ``scp`` branches, plus the notifier's ``slack`` and ``email`` under
        ``allocation_type`` (without ``include_comments``: a plan carries no comments)."""
        schema = notification_altdata(super().altdata_schema(), key=MODE)
        for branch in schema["dependencies"][MODE]["oneOf"]:
            branch["properties"].pop("include_comments", None)
        return schema

    @classmethod
    def secret_fields(cls) -> set[str]:
        """The form's secrets, and SkyPortal's ``access_token`` (read as ``api_token``)."""
        return super().secret_fields() | {LEGACY_TOKEN}

    @classmethod
    def normalise_altdata(cls, altdata: dict[str, Any]) -> dict[str, Any]:
        """SkyPortal's MMA code's keys read as the form's; where both are given, the form's win
        (SkyPortal's allocation edit merges keys and cannot remove the old ones):

        - ``type`` → ``allocation_type``; neither given but ``access_token`` or ``protocol``
          present → ``API`` (the code's default branch);
        - for ``API``: ``protocol``, ``host``, ``port`` → ``endpoint`` (``<protocol>://<host>:<port>``),
          ``access_token`` → ``api_token``;
        - for ``scp``: ``port`` given as text (SkyPortal's form types it so) → an integer.

        Keys another delivery uses are dropped, so an allocation switched from one to another keeps
        working."""
        data = dict(altdata)
        legacy_mode = data.pop(LEGACY_MODE, None)
        mode = data.get(MODE) or legacy_mode
        if mode is None and (LEGACY_TOKEN in data or "protocol" in data):
            mode = "API"
        if mode is not None:
            data[MODE] = mode
        token = data.pop(LEGACY_TOKEN, None)
        if mode == "API":
            parts = {key: data.pop(key) for key in LEGACY_URL_PARTS if key in data}
            if "endpoint" not in data and "protocol" in parts and "host" in parts:
                port = f":{parts['port']}" if "port" in parts else ""
                data["endpoint"] = f"{parts['protocol']}://{parts['host']}{port}"
            if "api_token" not in data and token is not None:
                data["api_token"] = token
        else:
            data.pop("protocol", None)
        if mode == "scp" and isinstance(data.get("port"), str) and data["port"].strip().isdigit():
            data["port"] = int(data["port"])
        return data

    def check_altdata(self, altdata: dict[str, Any]) -> None:
        mode = altdata[MODE]
        if mode == "API":
            self.check_url(altdata, "endpoint")
        elif mode == "scp":
            self._check_scp(altdata)
        elif mode == "slack" and self.notifier.settings.skyportal_url is None:
            reason = "slack is not available: a Slack message links the plan's event page, and this deployment sets no notify.skyportal_url"
            raise AltdataError.single(f"$.{MODE}", reason)
        self.notifier.check_altdata(altdata, self.altdata_schema(), key=MODE)

    def _check_scp(self, altdata: dict[str, Any]) -> None:
        errors = []
        if not altdata.get("password") and not altdata.get("private_key"):
            errors.append(FieldError("$.password", "is required, or private_key: the SSH login needs one"))
        reason = self.egress.host_refusal("ssh", altdata["host"].strip("[]"), int(altdata.get("port", 22)))
        if reason is not None:
            errors.append(FieldError("$.host", reason))
        try:
            asyncssh = sftp._asyncssh()
        except ConfigurationError:
            errors.append(FieldError(f"$.{MODE}", "scp is not available: this deployment lacks asyncssh (install facility_apis with the 'scp' extra)"))
        else:
            if altdata.get("private_key"):
                try:
                    asyncssh.import_private_key(altdata["private_key"])
                except (asyncssh.KeyImportError, ValueError):
                    errors.append(FieldError("$.private_key", "must be an unencrypted private key in OpenSSH or PEM text"))
            if not altdata["host_key"].startswith("SHA256:"):
                try:
                    asyncssh.import_public_key(altdata["host_key"])
                except (asyncssh.KeyImportError, ValueError):
                    errors.append(FieldError("$.host_key", "must be the server's public host key as known_hosts has it, or its SHA256 fingerprint"))
        if errors:
            raise AltdataError(errors)

    # -- the request -----------------------------------------------------------------------------

    def request_document(self) -> dict[str, Any]:
        """One field, ``observation_plan``: the plan schema of ``core/plan.py``."""
        plan = plan_schema()
        example = plan.pop("examples")[0]
        for key in ("$schema", "$id"):
            plan.pop(key)
        return {
            "$schema": DRAFT7,
            "$id": "facility_apis/mma/request",
            "title": "MMA observation plan delivery",
            "description": "The observation plan to deliver, as the host generated it (SkyPortal's MMAAPI builds it from the planned observations).",
            "type": "object",
            "properties": {PLAN_KEY: plan},
            "required": [PLAN_KEY],
            "additionalProperties": False,
            "examples": [{PLAN_KEY: example}],
        }

    def check_payload(self, payload: dict[str, Any]) -> None:
        check_plan(payload[PLAN_KEY])

    def window_end(self, payload: Mapping[str, Any]) -> datetime | None:
        """The end of the plan's ``validity_window_mjd`` (a plan whose window has closed is refused
        before delivery: nothing in it can be observed)."""
        plan = payload.get(PLAN_KEY)
        window = plan.get("validity_window_mjd") if isinstance(plan, Mapping) else None
        if not (isinstance(window, list | tuple) and len(window) == 2 and isinstance(window[1], int | float)):
            return None
        return from_mjd(float(window[1]))

    # -- operations ------------------------------------------------------------------------------

    def _destination(self, altdata: Mapping[str, Any]) -> sftp.SSHDestination:
        return sftp.SSHDestination.from_altdata(dict(altdata), self.ssh_timeout)

    def _notice(self, request: FollowupRequest, event: Event, plan: ObservationPlan, mode: str) -> Any:
        """The notice of ``event``; the plan is attached to a new plan's e-mail only."""
        attach = mode == "email" and event is Event.NEW
        return lambda reference: plan_notice(request, event, plan, facility=self.title, settings=self.notifier.settings, reference=reference, attach=attach)

    @staticmethod
    def _file(plan: ObservationPlan, altdata: Mapping[str, Any]) -> tuple[str, bytes]:
        """The plan's file name and content for an scp allocation."""
        extension = altdata.get("file_format", "json")
        return f"{file_stem(plan.queue_name)}.{extension}", plan.to_csv() if extension == "csv" else plan.to_json()

    def prepare(self, request: FollowupRequest) -> HTTPCall | MessageCall:
        """API: the ``PUT`` of the plan; slack: the webhook post; e-mail: the message with the plan
        attached; scp: the file that would be written, where and as whom (``MessageCall``)."""
        altdata, plan = request.allocation.altdata, ObservationPlan.from_payload(request.payload)
        mode = altdata[MODE]
        if mode == "API":
            return queue.submission(plan, dict(altdata))
        if mode == "slack":
            return self.notifier.slack_call(request, Event.NEW, facility=self.title, build=self._notice(request, Event.NEW, plan, mode))
        if mode == "email":
            return self.notifier.email_call(request, Event.NEW, facility=self.title, build=self._notice(request, Event.NEW, plan, mode))
        destination = self._destination(altdata)
        name, data = self._file(plan, altdata)
        host = f"[{destination.host}]" if ":" in destination.host else destination.host
        headers = {"User": destination.username, "Path": destination.path(name), "Host-Key": destination.host_key}
        return MessageCall("SFTP", f"sftp://{host}:{destination.port}", headers, data.decode("utf-8"))

    def submit(self, request: FollowupRequest, transport: Transport) -> Outcome:
        """Deliver the plan; ``submitted`` (nothing to follow) with ``remote_id``."""
        altdata, plan = request.allocation.altdata, ObservationPlan.from_payload(request.payload)
        mode = altdata[MODE]
        count = f"{len(plan.targets)} planned observations"
        if mode == "API":
            return queue.submit(plan, dict(altdata), transport)
        if mode == "scp":
            destination = self._destination(altdata)
            name, data = self._file(plan, altdata)
            path = sftp.write_file(destination, name, data, transport, self.egress)
            return Outcome(State.SUBMITTED, f"written to {destination.host}:{path} ({count})", remote_id=f"scp:{path}")
        if mode == "slack" and plan.event is None:
            raise PayloadError.single(f"$.{PLAN_KEY}.event", "is required for a Slack delivery: the message links the event's page, where the plan is")
        delivery = self.notifier.send(request, transport, Event.NEW, facility=self.title, via=mode, build=self._notice(request, Event.NEW, plan, mode))
        return Outcome(State.SUBMITTED, f"{delivery.detail} ({count})", remote_id=f"{mode.lower()}:{delivery.reference}")

    def delete(self, request: FollowupRequest, transport: Transport) -> Outcome:
        """Remove the plan where it went: the queue's ``DELETE``, the file removed, or a
        cancellation message; ``deleted`` also when it was gone already. A plan delivered by
        another mode than the allocation's present one cannot be reached: ``failed``, saying
        where it is."""
        altdata = request.allocation.altdata
        mode = altdata[MODE]
        plan = ObservationPlan.from_payload(request.payload) if PLAN_KEY in request.payload else None
        delivered, _, locator = (request.remote_id or "").partition(":")
        if not locator:
            if plan is None or mode not in ("API", "scp"):
                return Outcome(State.DELETED, "no delivery of this plan is recorded: nothing to remove")
            delivered, locator = mode.lower(), plan.queue_name if mode == "API" else self._destination(altdata).path(self._file(plan, altdata)[0])
        if delivered != mode.lower():
            where = f"the plan was delivered by {delivered} ({locator}), but the allocation now delivers by {mode}"
            raise RemoteError(f"{where}: remove it there by hand", permanent=True)
        if mode == "API":
            user = plan.user if plan is not None else request.requester or ""
            return queue.remove(locator, user, dict(altdata), transport)
        if mode == "scp":
            destination = self._destination(altdata)
            removed = sftp.remove_file(destination, locator, transport, self.egress)
            detail = f"removed {destination.host}:{locator}" if removed else f"{destination.host}:{locator} was already gone"
            return Outcome(State.DELETED, detail, remote_id=request.remote_id)
        if plan is None:
            raise PayloadError.single(f"$.{PLAN_KEY}", "is required to announce the plan's removal")
        sent = dataclasses.replace(request, remote_id=locator)
        delivery = self.notifier.send(sent, transport, Event.CANCELLED, facility=self.title, via=mode, build=self._notice(sent, Event.CANCELLED, plan, mode))
        return Outcome(State.DELETED, f"cancellation {delivery.detail}", remote_id=request.remote_id)
