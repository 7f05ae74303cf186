"""E-mail over SMTP (smtplib): off until SMTP_HOST and SMTP_FROM are set (`LINLI_SMTP_*`).

Settings (`matcher.settings.smtp_settings`): SMTP_HOST, SMTP_PORT (587), SMTP_USER and SMTP_PASSWORD
(log in when a user is set), SMTP_FROM (the sender address, e.g. "邻里 <noreply@linli.example.org>"),
SMTP_STARTTLS (true: upgrade the connection before logging in), SMTP_TIMEOUT_SECONDS.

A 4xx answer, a timeout or a refused connection is a `TemporaryFailure` (the sender retries); a 5xx
answer for the recipient or the message is a `PermanentFailure`. The log names the outbox key and a
masked address only, never the password or the message.
"""

from __future__ import annotations

import hashlib
import logging
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

from email_validator import EmailNotValidError, validate_email

from ..settings import smtp_settings
from . import Message, PermanentFailure, Receipt, TemporaryFailure

log = logging.getLogger(__name__)
_ANSWER_LENGTH = 180


def valid_address(value: Any) -> str | None:
    """The address in its normalized form when it is a valid one for sending (email-validator's syntax
    rules, internationalized addresses included; no DNS lookup), else None."""
    text = str(value or "").strip()
    if not text or len(text) > 254:
        return None
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def masked(address: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


_ADDRESS = re.compile(r"[^\s<>()\[\]\"',;:]+@[^\s<>()\[\]\"',;:]+")


def _answer(code: Any, text: Any) -> str:
    """A server's answer fit to keep: one line, short, any address in it masked."""
    words = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text or "")
    words = _ADDRESS.sub(lambda m: masked(m.group(0)), words)
    return " ".join(f"{code} {words}".split())[:_ANSWER_LENGTH]


class EmailChannel:
    """Plain-text UTF-8 e-mail: the subject and body from the message, its link below the text."""

    name = "email"

    def configured(self) -> bool:
        config = smtp_settings()
        return bool(config["host"] and config["from"])

    def address(self, user: Any) -> str | None:
        """The account's e-mail address when it is a plausible one."""
        return valid_address(getattr(user, "email", None))

    def build(self, message: Message, sender: str) -> EmailMessage:
        """The e-mail for one message (also what a preview shows)."""
        mail = EmailMessage()
        first_line = (message.text.splitlines() or [""])[0]
        mail["Subject"] = message.subject or first_line[:60]
        mail["From"] = sender
        mail["To"] = message.address
        mail["Date"] = formatdate(localtime=False, usegmt=True)
        domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
        # The same outbox row always has the same Message-ID: a receiving server may drop a resend.
        mail["Message-ID"] = f"<{hashlib.sha256(message.key.encode()).hexdigest()[:32]}@{domain}>"
        body = message.text + (f"\n\n{message.url}" if message.url else "") + "\n"
        mail.set_content(body, charset="utf-8")
        return mail

    def send(self, message: Message) -> Receipt:
        config = smtp_settings()
        if not self.configured():
            raise PermanentFailure("e-mail is not configured")
        to = masked(message.address)
        if valid_address(message.address) is None:
            raise PermanentFailure("not an e-mail address")
        mail = self.build(message, config["from"])
        try:
            with smtplib.SMTP(config["host"], config["port"], timeout=config["timeout"]) as smtp:
                if config["starttls"]:
                    smtp.starttls(context=ssl.create_default_context())
                if config["user"]:
                    smtp.login(config["user"], config["password"])
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            said = _answer(codes[0] if codes else "", "recipient refused")
            if codes and all(400 <= c < 500 for c in codes):
                log.warning("email not sent, will retry key=%s to=%s: %s", message.key, to, said)
                raise TemporaryFailure(said) from None
            log.warning("email refused key=%s to=%s: %s", message.key, to, said)
            raise PermanentFailure(said) from None
        except smtplib.SMTPAuthenticationError as exc:  # the settings are wrong: retry once they are fixed
            log.warning("email not sent key=%s: SMTP login refused (%s)", message.key, exc.smtp_code)
            raise TemporaryFailure(_answer(exc.smtp_code, "login refused")) from None
        except smtplib.SMTPResponseException as exc:
            said = _answer(exc.smtp_code, exc.smtp_error)
            if 400 <= exc.smtp_code < 500:
                log.warning("email not sent, will retry key=%s to=%s: %s", message.key, to, exc.smtp_code)
                raise TemporaryFailure(said) from None
            log.warning("email refused key=%s to=%s: %s", message.key, to, exc.smtp_code)
            raise PermanentFailure(said) from None
        except (smtplib.SMTPException, OSError) as exc:  # refused connection, timeout, TLS, a dropped line
            log.warning("email server unreachable key=%s: %s", message.key, type(exc).__name__)
            raise TemporaryFailure(f"SMTP server unreachable ({type(exc).__name__})") from None
        log.info("email sent key=%s to=%s", message.key, to)
        return Receipt(provider_id=str(mail["Message-ID"]).strip("<>")[:100], answer="250 accepted")
