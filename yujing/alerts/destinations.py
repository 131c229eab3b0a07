"""Where webhooks may go: public addresses only, unless an admin setting allows a range.

A webhook URL is chosen by an API user, and yujing's servers sit inside a plant or a
supervision network: without a policy, a subscription could make yujing POST to (and
report on) loopback services, the cloud metadata address 169.254.169.254 or the private
network. The URL is checked when the subscription is made, and again at every delivery
after resolving its name (a name may resolve elsewhere by then: DNS rebinding); the
delivery then connects to the address that was checked, not to a second lookup.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# A host whose last label is a number is an IPv4 address in one of inet_aton's forms
# (decimal 2130706433, octal 0177.0.0.1, hex 0x7f.1, short 127.1): no DNS name ends so.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)


class Refused(ValueError):
    """The destination is not allowed; the message says why."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked destination: connect to `ip`, speak to `host` (Host header, TLS name)."""

    url: str  # the URL with the host replaced by the checked address
    host: str
    ip: IP
    port: int | None = None

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name + (f":{self.port}" if self.port else "")


def networks(spec: str) -> list[Network]:
    """`YJ_WEBHOOK_ALLOW_CIDRS`: comma-separated ranges, e.g. `10.8.0.0/16,127.0.0.1/32`."""
    parts = (p.strip() for p in spec.split(","))
    return [ipaddress.ip_network(p, strict=False) for p in parts if p]


def allowed(ip: IP, allow: list[Network]) -> bool:
    ip = getattr(ip, "ipv4_mapped", None) or ip  # ::ffff:127.0.0.1 is loopback too
    if any(ip.version == net.version and ip in net for net in allow):
        return True
    return ip.is_global and not ip.is_multicast


def check_url(url: str, allow: list[Network]) -> str | IP:
    """What can be known without DNS; returns the host name, or its address if literal."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise Refused("only http and https URLs")
    if parts.username is not None or parts.password is not None:
        raise Refused("no credentials in the URL; the signature authenticates yujing")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise Refused("the URL has no host")
    try:
        parts.port  # noqa: B018 — raises ValueError on a port out of range
    except ValueError as exc:
        raise Refused(str(exc)) from None
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        try:
            host.encode("idna")
        except UnicodeError:
            raise Refused(f"{host[:64]!r} is not a valid host name") from None
        if _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
            raise Refused(f"{host!r} is an address in a non-standard form") from None
        if host.lower() == "localhost" or host.lower().endswith(".localhost"):
            raise Refused("localhost is not an allowed destination") from None
        return host
    if not allowed(ip, allow):
        raise Refused(f"{ip} is a private, loopback, link-local or reserved address")
    return ip


async def resolve(url: str, allow: list[Network]) -> Target:
    """The checked target of a delivery: every address the name has must be allowed."""
    parts = urlsplit(url)
    checked = check_url(url, allow)
    if isinstance(checked, str):
        loop = asyncio.get_running_loop()
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            infos = await loop.getaddrinfo(checked, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise OSError(f"cannot resolve {checked}: {exc}") from exc
        ips = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        bad = [str(ip) for ip in ips if not allowed(ip, allow)]
        if bad or not ips:
            raise Refused(f"{checked} resolves to a disallowed address ({', '.join(bad)})")
        ip, host = ips[0], checked
    else:
        ip, host = checked, str(checked)
    literal = f"[{ip}]" if ip.version == 6 else str(ip)
    netloc = literal + (f":{parts.port}" if parts.port else "")
    return Target(parts._replace(netloc=netloc).geturl(), host, ip, parts.port)
