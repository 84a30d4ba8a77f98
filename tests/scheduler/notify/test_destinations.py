"""Outbound destinations: public addresses, or what the operator listed; checked when resolved."""

from __future__ import annotations

import socket
import time
from ipaddress import ip_address, ip_network

import pytest

from scheduler.notify.destinations import is_allowed, parse_networks, post, public_target, resolve
from scheduler.notify.settings import DeliveryError
from tests.support.receivers import Recorder

LOOPBACK = (ip_network("127.0.0.1/32"),)


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.215.14", True),  # public
        ("2606:4700::1111", True),
        ("127.0.0.1", False),  # loopback
        ("::1", False),
        ("10.1.2.3", False),  # private
        ("172.17.0.1", False),
        ("192.168.1.1", False),
        ("fc00::1", False),
        ("169.254.169.254", False),  # link-local: cloud metadata
        ("fe80::1", False),
        ("100.64.0.1", False),  # shared address space
        ("0.0.0.0", False),
        ("224.0.0.1", False),  # multicast
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("::ffff:10.0.0.1", False),
    ],
)
def test_by_default_only_public_addresses(address: str, allowed: bool) -> None:
    assert is_allowed(ip_address(address), ()) is allowed


def test_listed_networks_are_allowed_too() -> None:
    listed = parse_networks("127.0.0.1, 10.0.0.0/8")
    assert is_allowed(ip_address("127.0.0.1"), listed)
    assert is_allowed(ip_address("::ffff:127.0.0.1"), listed)
    assert is_allowed(ip_address("10.9.8.7"), listed)
    assert not is_allowed(ip_address("127.0.0.2"), listed)
    assert not is_allowed(ip_address("192.168.0.1"), listed)
    with pytest.raises(ValueError):
        parse_networks("localhost")


def test_a_name_is_checked_on_every_address_it_resolves_to() -> None:
    with pytest.raises(DeliveryError, match="refused: localhost resolves to") as raised:
        resolve("localhost", 80, ())
    assert raised.value.permanent
    everything = parse_networks("127.0.0.0/8, ::1")
    assert resolve("localhost", 80, everything).is_loopback


def test_an_unlisted_receiver_gets_no_traffic_at_all(
    receiver: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    connects: list[object] = []
    real_connect = socket.create_connection
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: connects.append(a))
    with pytest.raises(DeliveryError, match=r"refused: 127\.0\.0\.1") as raised:
        post(receiver.url, b"{}", {}, timeout=2, allowed=())
    assert raised.value.permanent and connects == []
    monkeypatch.setattr(socket, "create_connection", real_connect)
    post(receiver.url, b"{}", {}, timeout=2, allowed=LOOPBACK)  # answered: all accepted by now
    assert receiver.connections == 1 and len(receiver.received) == 1


def test_redirects_are_not_followed(receiver: Recorder) -> None:
    receiver.status = 307
    with pytest.raises(DeliveryError, match="answered HTTP 307") as raised:
        post(receiver.url, b"{}", {}, timeout=2, allowed=LOOPBACK)
    assert raised.value.permanent
    assert len(receiver.received) == 1


def test_a_hanging_receiver_times_out_and_is_retried_later(receiver: Recorder) -> None:
    receiver.hang = True
    started = time.monotonic()
    with pytest.raises(DeliveryError, match=r"TimeoutError|timed out") as raised:
        post(receiver.url, b"{}", {}, timeout=0.5, allowed=LOOPBACK)
    assert time.monotonic() - started < 3
    assert not raised.value.permanent


def test_only_http_and_https() -> None:
    with pytest.raises(DeliveryError, match="not an http"):
        post("ftp://127.0.0.1/x", b"{}", {}, timeout=1, allowed=LOOPBACK)


def test_readers_see_scheme_host_and_port_only() -> None:
    assert public_target("https://user:pw@hooks.example.com/T0/B0/sekrit?a=1") == (
        "https://hooks.example.com"
    )
    assert public_target("http://[::1]:8080/x") == "http://[::1]:8080"
