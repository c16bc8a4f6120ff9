"""E-mail through an SMTP server (aiosmtplib)."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from services.notify.channels.base import DeliveryResult, OutboundMessage, transport_error


class SmtpChannel:
    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        username: str | None = None,
        password: str | None = None,
        start_tls: bool | None = None,
        use_tls: bool = False,
        timeout_s: float = 10.0,
    ) -> None:
        self._host, self._port, self._sender = host, port, sender
        self._username, self._password = username, password
        self._start_tls, self._use_tls, self._timeout = start_tls, use_tls, timeout_s

    def build(self, message: OutboundMessage) -> EmailMessage:
        """The MIME message for ``message`` (plain text, UTF-8)."""
        mail = EmailMessage()
        mail["From"] = self._sender
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(domain="outagedesk")
        mail["Content-Language"] = message.language
        mail["X-OutageDesk-Key"] = message.idempotency_key
        mail.set_content(message.body, charset="utf-8")
        return mail

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """4xx SMTP replies and connection failures are retryable; 5xx replies are not."""
        mail = self.build(message)
        try:
            await aiosmtplib.send(
                mail,
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                start_tls=self._start_tls,
                use_tls=self._use_tls,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            retryable = all(400 <= c < 500 for c in codes)
            return DeliveryResult(
                ok=False, retryable=retryable, error=f"recipients refused {codes}"
            )
        except aiosmtplib.SMTPResponseException as exc:
            retryable = 400 <= exc.code < 500
            return DeliveryResult(
                ok=False, retryable=retryable, error=f"smtp {exc.code}: {exc.message}"
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return transport_error(exc)
        return DeliveryResult(ok=True, provider_id=str(mail["Message-ID"]))

    async def aclose(self) -> None:
        """Nothing to close: one connection per message (low e-mail volume)."""
