"""Typed errors: each carries what a status message needs, and never a secret value."""

from __future__ import annotations

from dataclasses import dataclass


class FacilityError(Exception):
    """Base of every error raised by facility_apis."""


@dataclass(frozen=True)
class FieldError:
    """One failing field: its JSON path (``$.start_date``) and the rule it broke."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ValidationFailed(FacilityError):
    """Input did not match a schema; ``errors`` lists every failing field."""

    what = "input"

    def __init__(self, errors: list[FieldError]):
        self.errors = list(errors)
        super().__init__(f"invalid {self.what}: " + "; ".join(str(e) for e in self.errors))

    @classmethod
    def single(cls, path: str, message: str) -> ValidationFailed:
        """An error about one field."""
        return cls([FieldError(path, message)])


class AltdataError(ValidationFailed):
    """Allocation credentials (altdata) are invalid."""

    what = "altdata"


class PayloadError(ValidationFailed):
    """A follow-up request payload is invalid."""

    what = "payload"


class Throttled(FacilityError):
    """The remote service asked us to wait ``wait`` seconds before calling again.

    ``cause`` is what happened without the advice to retry (``rate limit reached at <host>``),
    for a caller that reports the throttle where nothing retries (e.g. a request's remaining
    parts left unsent); by default the message."""

    def __init__(self, wait: float, message: str = "", *, cause: str = ""):
        self.wait = wait
        super().__init__(message or f"throttled; retry in {wait:g} s")
        self.cause = cause or str(self)


class FacilityUnavailable(FacilityError):
    """The remote service could not be reached, or answered with a transient server error.

    ``sent`` tells whether a request that must not be repeated may have reached the service (a
    timeout after sending a POST): such a submission must not be repeated blindly. It is False for
    a call that never left, and for a repeatable one (see ``Transport.request``), which may be
    sent again.
    """

    def __init__(self, message: str, *, sent: bool = False):
        self.sent = sent
        super().__init__(message)


class RemoteError(FacilityError):
    """The remote service answered, but not with what the protocol promises (a 5xx, an
    unexpected status, an unreadable body). ``perform`` retries while following, never on submit;
    ``permanent=True`` says no later attempt can succeed (e.g. a result file in a layout the
    parser does not know), so none is made. ``maybe_done=True`` says the call may have been
    carried out anyway (a 5xx answer to a POST): a submission is then never sent again blindly."""

    def __init__(self, message: str, *, http_status: int | None = None, permanent: bool = False, maybe_done: bool = False):
        self.http_status = http_status
        self.permanent = permanent
        self.maybe_done = maybe_done
        super().__init__(message)


class RemoteNotFound(RemoteError):
    """The service answered 404: what was asked for does not exist (there)."""


class Rejected(FacilityError):
    """The facility refused the request itself (a 400-type answer, or a refusal in its own
    words); the message is its reason. A submission becomes ``rejected``: the observer can fix the
    request and submit again."""

    def __init__(self, message: str, *, http_status: int | None = None):
        self.http_status = http_status
        super().__init__(message)


class CredentialsRefused(FacilityError):
    """The facility refused the allocation's credentials (HTTP 401/403, or its own words for it).
    The message names the facility, never the credential."""

    def __init__(self, message: str, *, http_status: int | None = None):
        self.http_status = http_status
        super().__init__(message)


class ConfigurationError(FacilityError, ValueError):
    """A deployment setting (not an allocation's altdata) is unusable."""


class UnknownFacility(FacilityError, LookupError):
    """No facility is registered under that name."""


class DuplicateFacility(FacilityError):
    """Two facilities claim the same registry name."""


class NotImplementedOperation(FacilityError):
    """The facility does not implement that operation."""
