"""The email channel against a real SMTP server (aiosmtpd) started on a free 127.0.0.1 port."""

from __future__ import annotations

import logging
import socket
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from flask import Flask

from matcher.channels import Message, PermanentFailure, Receipt, TemporaryFailure, channels
from matcher.channels.email import EmailChannel, valid_address


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpInbox:
    """An aiosmtpd handler: answers the first `refuse` messages with `refusal`, then takes them."""

    def __init__(self) -> None:
        self.received: list = []  # the envelopes taken
        self.calls = 0           # DATA commands seen (taken or refused)
        self.refuse = 0
        self.refusal = "451 4.3.0 Try again later"
        self.port = 0

    async def handle_DATA(self, server, session, envelope):
        self.calls += 1
        if self.refuse > 0:
            self.refuse -= 1
            return self.refusal
        self.received.append(envelope)
        return "250 2.0.0 OK"

    def mails(self):
        return [message_from_bytes(e.content, policy=policy.default) for e in self.received]

    def config(self, **extra) -> dict:
        """App settings that point the email channel at this server (plain SMTP, no login)."""
        return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": self.port, "SMTP_FROM": "邻里 <noreply@linli.test>",
                "SMTP_STARTTLS": False, "SMTP_TIMEOUT_SECONDS": 5, **extra}


@pytest.fixture
def smtp_inbox():
    inbox = SmtpInbox()
    inbox.port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    yield inbox
    controller.stop()


@pytest.fixture
def smtp_app(smtp_inbox):
    """A bare app whose config points at the inbox (the channel reads only its settings)."""
    app = Flask(__name__)
    app.config.update(smtp_inbox.config())
    with app.app_context():
        yield app


def message(**overrides) -> Message:
    values = {"key": "41:email", "address": "li.xiuying@example.org", "event": "offer",
              "text": "您有新的服务邀请：“助老服务” 2026-12-07 09:00。请接受或谢绝。",
              "subject": "邻里志愿服务通知", "url": "https://linli.test/offers"}
    values.update(overrides)
    return Message(**values)


def test_a_chinese_message_arrives_intact(smtp_app, smtp_inbox):
    receipt = EmailChannel().send(message())
    assert isinstance(receipt, Receipt) and receipt.provider_id
    (mail,) = smtp_inbox.mails()
    assert mail["Subject"] == "邻里志愿服务通知"
    assert mail["To"] == "li.xiuying@example.org"
    assert mail["From"].addresses[0].display_name == "邻里"
    body = mail.get_content()
    assert "您有新的服务邀请：“助老服务” 2026-12-07 09:00。请接受或谢绝。" in body
    assert "https://linli.test/offers" in body
    assert smtp_inbox.received[0].rcpt_tos == ["li.xiuying@example.org"]
    # The same outbox key gives the same Message-ID (a resend can be recognised).
    EmailChannel().send(message())
    first, second = smtp_inbox.mails()
    assert first["Message-ID"] == second["Message-ID"] == f"<{receipt.provider_id}>"


def test_a_451_is_temporary_and_a_550_permanent(smtp_app, smtp_inbox):
    smtp_inbox.refuse = 1
    with pytest.raises(TemporaryFailure, match="451"):
        EmailChannel().send(message())
    smtp_inbox.refuse, smtp_inbox.refusal = 1, "550 5.7.1 <li.xiuying@example.org>: Message rejected"
    with pytest.raises(PermanentFailure, match="550") as refused:
        EmailChannel().send(message())
    assert str(refused.value) == "550 5.7.1 <l***@example.org>: Message rejected"  # kept on the row: masked
    assert smtp_inbox.received == []
    EmailChannel().send(message())
    assert len(smtp_inbox.received) == 1


def test_an_unreachable_server_or_missing_starttls_is_temporary(smtp_app, smtp_inbox):
    smtp_app.config["SMTP_STARTTLS"] = True  # aiosmtpd here offers no STARTTLS
    with pytest.raises(TemporaryFailure):
        EmailChannel().send(message())
    smtp_app.config.update(SMTP_STARTTLS=False, SMTP_PORT=free_port())  # nobody listens there
    with pytest.raises(TemporaryFailure, match="unreachable"):
        EmailChannel().send(message())
    assert smtp_inbox.received == []


def test_off_without_settings_and_addresses_checked(smtp_app):
    assert EmailChannel().configured()
    smtp_app.config["SMTP_HOST"] = ""
    assert not EmailChannel().configured()
    with pytest.raises(PermanentFailure):
        EmailChannel().send(message())

    class Person:
        email = " li@example.org "

    assert EmailChannel().address(Person()) == "li@example.org"
    for bad in (None, "", "li", "li@localhost", "a b@example.org", "<li@example.org>", "li@exa\nmple.org"):
        assert valid_address(bad) is None, bad
    assert set(channels()) >= {"email", "sms"}
    assert channels()["email"].name == "email"


def test_the_log_names_no_address_and_no_password(smtp_app, smtp_inbox, caplog):
    smtp_app.config["SMTP_PASSWORD"] = "s3cret-pw"
    caplog.set_level(logging.DEBUG)
    EmailChannel().send(message())
    smtp_inbox.refuse = 1
    with pytest.raises(TemporaryFailure):
        EmailChannel().send(message())
    ours = our_log(caplog)
    assert "email sent key=41:email" in ours
    assert "li.xiuying@example.org" not in ours and "s3cret-pw" not in ours


def our_log(caplog) -> str:
    """What the service itself logged (the test's SMTP server logs whole conversations)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("matcher", "web")))
