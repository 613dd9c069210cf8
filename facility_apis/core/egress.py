"""Where a call may go: one egress rule for every request the package sends.

1. The scheme is ``http`` or ``https`` (compared case-insensitively); a URL with a user name or
   password in it (``https://user:pass@host``) is refused: credentials travel in headers.
2. A call that carries a secret goes only over https, or over plain http to a loopback address.
3. The host must not be, nor resolve to, an address that is private, loopback, link-local,
   multicast, reserved, unspecified or otherwise not global (IPv4, IPv6 and IPv4-mapped IPv6
   alike), unless the deployment allows it: an :class:`EgressPolicy` lists the origins
   (``http://127.0.0.1:8001``) and networks (``10.0.0.0/8``) it may reach besides the public
   internet. Tests and the demo allow their emulators' origins; a production deployment usually
   allows nothing.

4. The host and port are not one of the deployment's own origins (``EgressPolicy.own``: the
   gateway's public and listen addresses, the SkyPortal it reports to), whatever ``allow`` says:
   a facility calling one hands the request back to where it came from (GENERIC forwarding to the
   gateway would loop).

Rules 1, 2 and 4, and rule 3 for literal addresses and ``localhost``, are checked on the URL before
anything is sent (:meth:`EgressPolicy.refusal`; also what a form's ``base_url`` is checked
against when an allocation is saved). Rule 3 for host names is checked on the addresses a name
resolves to, when the connection is opened (:meth:`EgressPolicy.vet`): the transport connects to
the very address it checked, so a name cannot be re-pointed between the check and the connection.

A protocol other than HTTP whose destination an allocation names (SSH, for the scp delivery of
MMA plans) is held to rule 3 the same way: :meth:`EgressPolicy.host_refusal` on the host and port
when the allocation is saved, :meth:`EgressPolicy.vet` on the addresses when connecting (the
connection then goes to a vetted address). Rules 1 and 2 concern URLs and cleartext HTTP; SSH is
always encrypted. An allowance for such a destination is an origin with that scheme
(``ssh://127.0.0.1:2222``) or a network.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .errors import FacilityError

SCHEMES = ("http", "https")
#: Schemes an allowance may name: HTTP's, and the other protocols whose host an allocation gives.
ALLOWANCE_SCHEMES = (*SCHEMES, "ssh")
DEFAULT_PORTS = {"http": 80, "https": 443, "ssh": 22}
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
LOOPBACK = ipaddress.ip_address("127.0.0.1")

#: The rule in words, for form descriptions and error messages.
RULE_IN_WORDS = "must use https (plain http only to a loopback address); private and internal addresses are refused"
#: Why a URL at one of the deployment's own origins (``EgressPolicy.own``) is refused.
LOOP_RULE = "is this deployment's own gateway or the SkyPortal it reports to: a request sent there comes back here, a forwarding loop"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[..., list[tuple[Any, ...]]]


class EgressRefused(FacilityError):
    """A call was refused before any connection: the destination breaks the egress rule.

    The message names the host (never the path or query, which may hold a secret) and the rule.
    """


def _address(host: str) -> Address | None:
    """``host`` as an IP address (IPv4-mapped IPv6 unwrapped), or None for a name."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine: ``localhost`` or a loopback address."""
    host = host.lower().rstrip(".")
    address = _address(host)
    return host in LOOPBACK_NAMES if address is None else address.is_loopback


def is_internal(address: Address) -> bool:
    """An address a call from a deployment must not reach unless allowed: anything not global,
    and multicast (some multicast ranges count as global)."""
    return not address.is_global or address.is_multicast or address.is_unspecified


@dataclass(frozen=True)
class Origin:
    """``scheme://host:port`` with the scheme and host lower-cased and the port explicit."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").rstrip(".")
        try:
            port = parts.port or DEFAULT_PORTS.get(scheme, 0)
        except ValueError:
            port = -1
        return cls(scheme, host, port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True)
class EgressPolicy:
    """The deployment's allowances beyond the public internet.

    ``allow`` holds origins (``"http://127.0.0.1:8001"``) and networks (``"10.0.0.0/8"``,
    ``"::1/128"``); ``own``, the deployment's own origins, never called (rule 4). ``internal=True``
    lifts rule 3 altogether: for endpoints an admin configured (SkyPortal itself, the gateway),
    never for a URL an allocation or a facility supplies.
    ``resolve`` is ``socket.getaddrinfo`` unless a test stands in for DNS.
    """

    allow: tuple[str, ...] = ()
    internal: bool = False
    #: Origins of the deployment itself (the gateway, the SkyPortal it reports to), refused
    #: whatever else is allowed: a facility calling one would hand the request back to where it
    #: came from, a forwarding loop (GENERIC pointed at the gateway). Host and port are compared.
    own: tuple[str, ...] = ()
    resolve: Resolver = field(default=socket.getaddrinfo, repr=False, compare=False)
    _origins: frozenset[Origin] = field(init=False, repr=False, compare=False)
    _networks: tuple[Network, ...] = field(init=False, repr=False, compare=False)
    _own: frozenset[tuple[str, int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        own = {(origin.host, origin.port) for origin in map(Origin.of, self.own)}
        object.__setattr__(self, "own", tuple(self.own))
        object.__setattr__(self, "_own", frozenset(own))
        origins, networks = set(), []
        for entry in self.allow:
            if "://" in entry:
                origin = Origin.of(entry)
                if origin.scheme not in ALLOWANCE_SCHEMES or not origin.host or origin.port < 0:
                    raise ValueError(f"egress allowance {entry!r} is not an origin (http, https or ssh)")
                origins.add(origin)
            else:
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    raise ValueError(f"egress allowance {entry!r} is neither an origin (scheme://host:port) nor a network") from None
        object.__setattr__(self, "allow", tuple(self.allow))
        object.__setattr__(self, "_origins", frozenset(origins))
        object.__setattr__(self, "_networks", tuple(networks))

    @classmethod
    def allowing(cls, *entries: str | Iterable[str], resolve: Resolver = socket.getaddrinfo) -> EgressPolicy:
        """A policy allowing ``entries`` (strings, or iterables of strings)."""
        flat: list[str] = []
        for entry in entries:
            flat.extend([entry] if isinstance(entry, str) else entry)
        return cls(tuple(flat), resolve=resolve)

    # -- the rule ------------------------------------------------------------------------------

    def _allowed(self, origin: Origin, address: Address | None) -> bool:
        if self.internal or origin in self._origins:
            return True
        return address is not None and any(address in network for network in self._networks if network.version == address.version)

    def refusal(self, url: str, *, secret: bool = False) -> str | None:
        """Why ``url`` may not be called (rules 1, 2, 4, and 3 for literal addresses and
        ``localhost``), in words; None when it may. No DNS lookup is made."""
        parts = urlsplit(url.strip())
        origin = Origin.of(url)
        if origin.scheme not in SCHEMES:
            return f"the scheme {origin.scheme or '(none)'!r} is not allowed: only http and https"
        if not origin.host or origin.port < 0:
            return "the URL names no valid host and port"
        if parts.username is not None or parts.password is not None:
            return "a URL must not carry a user name or password (credentials travel in headers)"
        if (origin.host, origin.port) in self._own:
            return f"{origin.host}:{origin.port} {LOOP_RULE}"
        if secret and origin.scheme != "https" and not is_loopback(origin.host):
            return f"credentials may travel only over https (plain http only to a loopback address), not to {origin.host}"
        address = _address(origin.host)
        if address is None and is_loopback(origin.host):
            address = LOOPBACK  # ``localhost``: judged as the loopback address it names
        if address is not None and is_internal(address) and not self._allowed(origin, address):
            return f"{origin.host} is a private or internal address, which this deployment does not allow"
        return None

    def host_refusal(self, scheme: str, host: str, port: int) -> str | None:
        """Why ``host``:``port`` may not be reached over ``scheme`` (a protocol other than HTTP,
        e.g. ``ssh``): rule 3 for a literal address or ``localhost``, in words; None when it may
        (a name is judged on its addresses by :meth:`vet` when connecting). No DNS lookup."""
        origin = Origin(scheme.lower(), host.lower().rstrip("."), port)
        if not origin.host or not 0 < port < 65536:
            return "names no valid host and port"
        address = _address(origin.host)
        if address is None and is_loopback(origin.host):
            address = LOOPBACK
        if address is not None and is_internal(address) and not self._allowed(origin, address):
            return f"{origin.host} is a private or internal address, which this deployment does not allow"
        return None

    def check(self, url: str, *, secret: bool = False) -> None:
        """Raise :class:`EgressRefused` when :meth:`refusal` finds a reason."""
        reason = self.refusal(url, secret=secret)
        if reason is not None:
            raise EgressRefused(f"refused to call {Origin.of(url).host or 'that URL'}: {reason}")

    def vet(self, scheme: str, host: str, port: int) -> list[str]:
        """The addresses ``host`` resolves to, each checked against rule 3, as strings to connect
        to; :class:`EgressRefused` when any is internal and not allowed (a name resolving to a
        mix is refused whole)."""
        origin = Origin(scheme.lower(), host.lower().rstrip("."), port)
        literal = _address(origin.host)
        if literal is not None:
            found = [literal]
        else:
            infos = self.resolve(origin.host, port, 0, socket.SOCK_STREAM)
            found = [_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        vetted: list[str] = []
        for address in found:
            if address is None:
                continue
            if is_internal(address) and not self._allowed(origin, address):
                raise EgressRefused(f"refused to call {origin.host}: it resolves to a private or internal address, which this deployment does not allow")
            if str(address) not in vetted:
                vetted.append(str(address))
        if not vetted:
            raise socket.gaierror(socket.EAI_NONAME, f"{origin.host} resolves to no address")
        return vetted


#: Calls to endpoints an admin configured (SkyPortal, the gateway): rules 1 and 2 only.
INTERNAL = EgressPolicy(internal=True)
