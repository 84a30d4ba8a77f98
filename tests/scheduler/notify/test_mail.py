"""Email through a real SMTP server (aiosmtpd): recipients, subject, both parts, login."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from definitions import EmailNotification
from executor.fake import Script
from scheduler.notify.sender import Sender
from scheduler.notify.settings import SmtpSettings
from tests.scheduler.factories import make_task
from tests.scheduler.notify.conftest import PUBLIC_URL, deliveries, drain
from tests.scheduler.test_engine import World
from tests.support.live import free_port
from tests.support.receivers import SmtpServer, smtp_server

PASSWORD = "smtp-password-7f3a9c"


def plain(smtp: SmtpServer, **overrides: object) -> SmtpSettings:
    """Settings of the test server, unencrypted (aiosmtpd here has no certificate)."""
    return SmtpSettings(host="127.0.0.1", port=smtp.port, security="none", **overrides)


def test_a_failed_run_is_mailed_with_each_task_s_story(
    world: World, make_sender: Callable[..., Sender], smtp: SmtpServer
) -> None:
    world.save(
        make_task("extract"),
        make_task("load", "extract", max_attempts=2),
        notifications=(EmailNotification("Ops Team", "ops@example.com", "on_failure"),),
    )
    world.fake.script("extract", Script(lines=(("stdout", "extracted 42 rows"),)))
    world.fake.script("load", Script(exit_code=7, lines=(("stderr", "disk full"),)))
    run_id = world.trigger()
    world.settle()
    world.clock.advance(5)
    drain(make_sender(smtp=plain(smtp, sender="gnomon@example.org")))

    [(sender, recipients, message)] = smtp.mailbox.messages
    assert (sender, recipients) == ("gnomon@example.org", ["ops@example.com"])
    assert message["To"] == "Ops Team <ops@example.com>"
    assert message["Subject"] == "Gnomon: job failed"
    assert message["Message-ID"] == f"<{deliveries(run_id)[0].id}@gnomon>"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    link = f"{PUBLIC_URL}/runs/{run_id}"
    for part in (text, html):
        assert link in part
        assert "extracted 42 rows" in part and "disk full" in part
        assert "exit code 7" in part
    assert "- extract: succeeded, attempt 1, 0.0 s" in text
    assert "- load: failed, attempt 2, 0.0 s, exit code 7" in text
    assert "<td>load</td><td>failed</td><td>2</td><td>0.0 s</td>" in html
    assert deliveries(run_id)[0].state == "sent"


def test_a_success_after_a_failure_says_succeeded(
    world: World, make_sender: Callable[..., Sender], smtp: SmtpServer
) -> None:
    world.save(notifications=(EmailNotification("ops", "ops@example.com"),))
    sender = make_sender(smtp=plain(smtp))
    for exit_code in (1, 0, 0):
        world.fake.script("main", Script(exit_code=exit_code))
        world.trigger()
        world.settle()
        drain(sender)
        world.clock.advance(60)
    subjects = [message["Subject"] for _, _, message in smtp.mailbox.messages]
    assert subjects == ["Gnomon: job failed", "Gnomon: job succeeded"]


def test_login_works_and_the_password_is_never_logged(
    world: World, make_sender: Callable[..., Sender], caplog: pytest.LogCaptureFixture
) -> None:
    world.save(notifications=(EmailNotification("ops", "ops@example.com", "always"),))
    world.trigger()
    world.settle()
    caplog.set_level(logging.DEBUG)
    with smtp_server(user="gnomon", password=PASSWORD) as smtp:
        wrong = make_sender(smtp=plain(smtp, user="gnomon", password=PASSWORD + "x"))
        drain(wrong)  # refused login: retried later
        [delivery] = deliveries()
        assert delivery.state == "pending" and "SMTPAuthenticationError" in delivery.last_error
        world.clock.now = delivery.due_at
        drain(make_sender(smtp=plain(smtp, user="gnomon", password=PASSWORD)))
        assert smtp.mailbox.logins == [("gnomon", PASSWORD)]
        assert len(smtp.mailbox.messages) == 1
    assert PASSWORD not in caplog.text
    assert all(PASSWORD not in (d.last_error or "") for d in deliveries())


def test_a_dead_smtp_server_means_a_retry_later(
    world: World, make_sender: Callable[..., Sender]
) -> None:
    world.save(notifications=(EmailNotification("ops", "ops@example.com", "always"),))
    world.trigger()
    world.settle()
    dead = SmtpSettings(host="127.0.0.1", port=free_port(), security="none")
    drain(make_sender(smtp=dead))
    [delivery] = deliveries()
    assert (delivery.state, delivery.attempts) == ("pending", 1)
    assert "ConnectionRefusedError" in delivery.last_error


def test_a_refused_recipient_is_given_up_at_once(
    world: World, make_sender: Callable[..., Sender], smtp: SmtpServer
) -> None:
    smtp.mailbox.refused.add("gone@example.com")
    world.save(notifications=(EmailNotification("gone", "gone@example.com", "always"),))
    world.trigger()
    world.settle()
    drain(make_sender(smtp=plain(smtp)))
    [delivery] = deliveries()
    assert (delivery.state, delivery.attempts) == ("failed", 1)
    assert "recipient refused: [550]" in delivery.last_error
    assert smtp.mailbox.messages == []


@pytest.mark.parametrize(
    ("security", "error"), [("starttls", "SMTPNotSupportedError"), ("ssl", "SSLError")]
)
def test_encryption_is_never_silently_dropped(
    world: World, make_sender: Callable[..., Sender], smtp: SmtpServer, security: str, error: str
) -> None:
    """The test server speaks plain SMTP only: asked for TLS, Gnomon sends nothing in clear."""
    world.save(notifications=(EmailNotification("ops", "ops@example.com", "always"),))
    world.trigger()
    world.settle()
    settings = SmtpSettings(host="127.0.0.1", port=smtp.port, security=security)
    drain(make_sender(smtp=settings))
    [delivery] = deliveries()
    assert delivery.state == "pending" and error in delivery.last_error
    assert smtp.mailbox.messages == []
