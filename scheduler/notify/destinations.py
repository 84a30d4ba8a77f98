"""Outbound HTTP to destinations a definition names, only where the operator allows.

A destination's host is resolved at send time; every address it resolves to must be
public (globally routable) or inside a network the operator listed, and the request
then goes to that very address (no second lookup, so DNS rebinding cannot redirect it).
Redirects are not followed.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from urllib.parse import urlsplit

from scheduler.notify.settings import DeliveryError, Network

Address = IPv4Address | IPv6Address
MAX_ANSWER_CHARS = 300


def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma-separated addresses or CIDR networks; ValueError naming a bad one."""
    return tuple(ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())


def is_allowed(address: Address, allowed: tuple[Network, ...]) -> bool:
    """Whether `address` is public, or inside one of the `allowed` networks."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in allowed):
        return True
    return address.is_global and not address.is_multicast


def public_target(url: str) -> str:
    """What readers may see of a URL: its scheme, host and port (paths can hold tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def resolve(host: str, port: int, allowed: tuple[Network, ...]) -> Address:
    """The address to connect to; DeliveryError if the name does not resolve or any of its
    addresses is not allowed (then nothing has been sent to it)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise DeliveryError(f"cannot resolve {host}: {error}") from None
    addresses = [ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    refused = sorted({str(a) for a in addresses if not is_allowed(a, allowed)})
    if refused or not addresses:
        raise DeliveryError(
            f"refused: {host} resolves to {', '.join(refused) or 'nothing'}, which is not a "
            "public address nor in GNOMON_NOTIFY_ALLOWED_NETWORKS",
            permanent=True,
        )
    return addresses[0]


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to a host name, made to one checked address."""

    def __init__(self, host: str, port: int, address: Address, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        """Connect to the checked address instead of resolving the name again."""
        self.sock = socket.create_connection((str(self.address), self.port), self.timeout)


class _PinnedHTTPS(_PinnedHTTP):
    """An HTTPS connection to a checked address, verifying the certificate of the name."""

    default_port = http.client.HTTPS_PORT

    def connect(self) -> None:
        """Connect, then wrap in TLS for the host name (SNI and certificate check)."""
        super().connect()
        self.sock = ssl.create_default_context().wrap_socket(self.sock, server_hostname=self.host)


@dataclass(frozen=True)
class Answer:
    """A destination's HTTP answer: its status and the start of its body."""

    status: int
    text: str


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float,
    allowed: tuple[Network, ...],
) -> Answer:
    """POST `body` to `url` at an allowed address; DeliveryError unless it answers 2xx."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError(f"not an http(s) URL: {public_target(url)}", permanent=True)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    address = resolve(parts.hostname, port, allowed)
    connection = (_PinnedHTTPS if https else _PinnedHTTP)(parts.hostname, port, address, timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=body, headers=dict(headers))
        response = connection.getresponse()
        answer = Answer(response.status, response.read(4096).decode("utf-8", "replace"))
    except (OSError, http.client.HTTPException) as error:
        raise DeliveryError(f"{public_target(url)}: {type(error).__name__}: {error}") from None
    finally:
        connection.close()
    return _checked(url, answer)


def _checked(url: str, answer: Answer) -> Answer:
    """`answer` if it is a success; a DeliveryError saying whether a retry may help if not."""
    if 200 <= answer.status < 300:
        return answer
    retry = answer.status in (408, 425, 429) or answer.status >= 500
    text = " ".join(answer.text.split())[:MAX_ANSWER_CHARS]
    raise DeliveryError(
        f"{public_target(url)} answered HTTP {answer.status}" + (f": {text}" if text else ""),
        permanent=not retry,
    )
