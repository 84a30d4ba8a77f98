"""How notifications are sent: SMTP server, destinations allowed, timeouts and retries."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network

Network = IPv4Network | IPv6Network


@dataclass(frozen=True)
class SmtpSettings:
    """The SMTP server email goes through; an empty host means email cannot be sent."""

    host: str = ""
    port: int = 25
    security: str = "starttls"  # none | starttls | ssl
    user: str = ""
    password: str = field(default="", repr=False)
    sender: str = "gnomon@localhost"


@dataclass(frozen=True)
class NotifySettings:
    """Delivery settings, built once from the service configuration."""

    public_url: str = "http://127.0.0.1:8080"  # links point at {public_url}/runs/<id>
    smtp: SmtpSettings = SmtpSettings()
    allowed_networks: tuple[Network, ...] = ()  # beyond public addresses
    timeout_seconds: float = 10.0
    retry_base_seconds: float = 30.0
    retry_max_delay_seconds: float = 900.0
    retry_for_seconds: float = 4 * 3600.0
    workers: int = 2
    poll_seconds: float = 5.0

    @property
    def lease_seconds(self) -> float:
        """How long a claimed delivery stays claimed: well past any one try's timeouts."""
        return 6 * self.timeout_seconds + 30


class DeliveryError(Exception):
    """A try failed; `permanent` ones are not retried. The text never holds a secret."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
