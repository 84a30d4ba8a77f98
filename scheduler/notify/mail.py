"""Email over SMTP (smtplib): a plain-text and an HTML part, through the operator's server."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate

from definitions import EmailNotification
from scheduler.notify.report import RunReport, email_html, email_text, subject
from scheduler.notify.settings import DeliveryError, SmtpSettings


def message(
    notification: EmailNotification, report: RunReport, message_id: str, sender: str
) -> EmailMessage:
    """The email of one delivery; DeliveryError (permanent) if an address cannot be a header."""
    mail = EmailMessage()
    try:
        mail["From"] = sender
        mail["To"] = formataddr((notification.name, notification.email))
        mail["Subject"] = subject(report)
    except (ValueError, TypeError) as error:
        raise DeliveryError(f"bad address: {error}", permanent=True) from None
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = f"<{message_id}@gnomon>"
    mail.set_content(email_text(report))
    mail.add_alternative(email_html(report), subtype="html")
    return mail


def send(
    notification: EmailNotification,
    report: RunReport,
    message_id: str,
    smtp: SmtpSettings,
    timeout: float,
) -> None:
    """Send the email; DeliveryError if the server does not take it (permanent when every
    recipient is refused for good)."""
    if not smtp.host:
        raise DeliveryError("no SMTP server configured (GNOMON_SMTP_HOST)")
    mail = message(notification, report, message_id, smtp.sender)
    try:
        with _connect(smtp, timeout) as server:
            if smtp.user:
                server.login(smtp.user, smtp.password)
            server.send_message(mail)
    except smtplib.SMTPRecipientsRefused as error:
        codes = [code for code, _ in error.recipients.values()]
        raise DeliveryError(f"recipient refused: {codes}", permanent=min(codes) >= 500) from None
    except (smtplib.SMTPException, OSError) as error:
        where = f"SMTP {smtp.host}:{smtp.port}"
        raise DeliveryError(f"{where}: {type(error).__name__}: {error}") from None


def _connect(smtp: SmtpSettings, timeout: float) -> smtplib.SMTP:
    """A connection to the server, encrypted as its `security` says."""
    if smtp.security == "ssl":
        context = ssl.create_default_context()
        return smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout, context=context)
    server = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
    if smtp.security == "starttls":
        try:
            server.starttls(context=ssl.create_default_context())
        except BaseException:
            server.close()
            raise
    return server
