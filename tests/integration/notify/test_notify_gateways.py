"""Channel adapters against real local servers: aiosmtpd, and an HTTP server standing in
for the SMS gateway, the WeChat API and a webhook receiver."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller

from services.common.clock import VirtualClock, WallClock
from services.notify.channels.base import OutboundMessage
from services.notify.channels.file import FileChannel
from services.notify.channels.sms_http import SmsHttpChannel
from services.notify.channels.smtp import SmtpChannel
from services.notify.channels.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookChannel,
    verify_signature,
)
from services.notify.channels.wechat import WeChatChannel
from services.notify.render import render

SECRET = "webhook-secret"
CONTEXT = {
    "incident_id": "INC-20260714-7F3A21",
    "area": "云河路片区",
    "cause": "typhoon",
    "etr": "2026-07-14T10:30:00+00:00",
    "restored_at": "2026-07-14T11:02:00+00:00",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def message(stage: str, language: str, to: str, channel: str) -> OutboundMessage:
    subject, body = render(stage, language, CONTEXT, channel=channel)
    return OutboundMessage(
        channel, to, subject, body, "C000001", CONTEXT["incident_id"], stage, language,
        f"{CONTEXT['incident_id']}:C000001:{stage}:0",
    )  # fmt: skip


# --- SMTP -----------------------------------------------------------------------------


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_RCPT(  # noqa: N802 - aiosmtpd hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address.startswith("gone@"):
            return "550 5.1.1 no such mailbox"
        if address.startswith("full@"):
            return "452 4.2.2 mailbox full, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 queued"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox, port = Mailbox(), free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


class TestSmtpChannel:
    @pytest.mark.parametrize(
        ("stage", "language", "subject_part", "body_parts"),
        [
            ("outage_detected", "zh-CN", "停电通知", ["因台风停电", "7月14日18:30", "7F3A21"]),
            ("outage_detected", "en", "Power outage", ["caused by the typhoon", "18:30 on 14 Jul"]),
            ("restored", "zh-CN", "已恢复供电", ["7月14日19:02恢复供电", "回复短信“1”"]),
            ("restored", "en", "Power restored", ["restored at 19:02 on 14 Jul", "reply 1"]),
        ],
    )
    async def test_message_content_per_stage_and_language(
        self,
        smtp_server: tuple[Mailbox, int],
        stage: str,
        language: str,
        subject_part: str,
        body_parts: list[str],
    ) -> None:
        mailbox, port = smtp_server
        channel = SmtpChannel(
            "127.0.0.1", port, "OutageDesk <noreply@example.com>", start_tls=False
        )
        result = await channel.send(message(stage, language, "c1@example.com", "email"))
        assert result.ok, result.error
        (received,) = mailbox.messages
        assert received["To"] == "c1@example.com"
        assert subject_part in str(received["Subject"])
        assert received["Message-ID"] == result.provider_id
        body = received.get_content()
        for part in body_parts:
            assert part in body

    async def test_rejections_are_classified(self, smtp_server: tuple[Mailbox, int]) -> None:
        _, port = smtp_server
        channel = SmtpChannel("127.0.0.1", port, "noreply@example.com", start_tls=False)
        gone = await channel.send(message("restored", "en", "gone@example.com", "email"))
        full = await channel.send(message("restored", "en", "full@example.com", "email"))
        assert (gone.ok, gone.retryable) == (False, False)
        assert (full.ok, full.retryable) == (False, True)

    async def test_unreachable_server_is_retryable(self) -> None:
        channel = SmtpChannel("127.0.0.1", free_port(), "noreply@example.com", timeout_s=2)
        result = await channel.send(message("restored", "en", "c1@example.com", "email"))
        assert (result.ok, result.retryable) == (False, True)


# --- HTTP gateways ------------------------------------------------------------------------


class Gateway(BaseHTTPRequestHandler):
    """SMS gateway under /sms/<behaviour>, WeChat under /wx, webhook receiver under /hook."""

    requests: list[dict[str, Any]]
    tokens_issued: int
    reject_tokens: set[str]

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def _reply(self, status: int, payload: Any = None) -> None:
        data = json.dumps(payload or {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/wx/cgi-bin/token":
            if query.get("secret") != ["app-secret"]:
                self._reply(200, {"errcode": 40125, "errmsg": "invalid appsecret"})
                return
            type(self).tokens_issued += 1
            self._reply(200, {"access_token": f"t{self.tokens_issued}", "expires_in": 7200})
            return
        self._reply(404)

    def do_POST(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.requests.append(
            {"path": url.path, "query": parse_qs(url.query), "headers": dict(self.headers),
             "body": raw.decode()}
        )  # fmt: skip
        if url.path.startswith("/sms/"):
            status = {"ok": 200, "busy": 503, "limit": 429, "bad": 400}[url.path[5:]]
            self._reply(status, {"id": "sms-42"} if status == 200 else {"error": "x"})
        elif url.path == "/wx/cgi-bin/message/template/send":
            token = parse_qs(url.query)["access_token"][0]
            touser = json.loads(raw)["touser"]
            if token in self.reject_tokens:
                self._reply(200, {"errcode": 42001, "errmsg": "access_token expired"})
            elif touser == "busy-user":
                self._reply(200, {"errcode": -1, "errmsg": "system busy"})
            elif touser == "unknown-user":
                self._reply(200, {"errcode": 40003, "errmsg": "invalid openid"})
            else:
                self._reply(200, {"errcode": 0, "errmsg": "ok", "msgid": 200228332})
        elif url.path.startswith("/hook/"):
            ok = verify_signature(
                SECRET,
                self.headers[TIMESTAMP_HEADER],
                raw,
                self.headers[SIGNATURE_HEADER],
            )
            status = {"ok": 204, "down": 502}.get(url.path[6:], 404)
            self._reply(status if ok else 401)
        else:
            self._reply(404)


@pytest.fixture
def gateway() -> Iterator[tuple[str, type[Gateway]]]:
    class handler(Gateway):  # fresh class state per test  # noqa: N801
        requests: list[dict[str, Any]] = []
        tokens_issued = 0
        reject_tokens: set[str] = set()

    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


class TestSmsHttpChannel:
    async def test_json_body_with_auth_header(self, gateway: tuple[str, type[Gateway]]) -> None:
        base, handler = gateway
        channel = SmsHttpChannel(f"{base}/sms/ok", api_key="k-123")
        result = await channel.send(message("restored", "zh-CN", "+8613800000001", "sms"))
        await channel.aclose()
        assert (result.ok, result.provider_id) == (True, "sms-42")
        (req,) = handler.requests
        assert req["headers"]["Authorization"] == "Bearer k-123"
        sent = json.loads(req["body"])
        assert sent["to"] == "+8613800000001"
        assert sent["text"].startswith("【国网供电】尊敬的客户")
        assert "请回复1" in sent["text"]

    async def test_form_body(self, gateway: tuple[str, type[Gateway]]) -> None:
        base, handler = gateway
        channel = SmsHttpChannel(f"{base}/sms/ok", api_key="k", body_format="form", auth_scheme="")
        assert (await channel.send(message("etr_set", "en", "+8613800000002", "sms"))).ok
        await channel.aclose()
        form = parse_qs(handler.requests[0]["body"])
        assert form["to"] == ["+8613800000002"]
        assert "we expect power back by 18:30 on 14 Jul" in form["text"][0]
        assert handler.requests[0]["headers"]["Authorization"] == "k"

    @pytest.mark.parametrize(
        ("behaviour", "retryable"), [("busy", True), ("limit", True), ("bad", False)]
    )
    async def test_errors_classified(
        self, gateway: tuple[str, type[Gateway]], behaviour: str, retryable: bool
    ) -> None:
        channel = SmsHttpChannel(f"{gateway[0]}/sms/{behaviour}")
        result = await channel.send(message("restored", "en", "+86138", "sms"))
        await channel.aclose()
        assert (result.ok, result.retryable) == (False, retryable)

    async def test_connection_refused_is_retryable(self) -> None:
        channel = SmsHttpChannel(f"http://127.0.0.1:{free_port()}/sms")
        result = await channel.send(message("restored", "en", "+86138", "sms"))
        await channel.aclose()
        assert (result.ok, result.retryable) == (False, True)


class TestWeChatChannel:
    def channel(self, base: str, clock: VirtualClock, secret: str = "app-secret") -> WeChatChannel:
        return WeChatChannel(f"{base}/wx", "app-id", secret, {"default": "TPL-1"}, clock)

    async def test_token_cached_until_expiry(self, gateway: tuple[str, type[Gateway]]) -> None:
        base, handler = gateway
        clock = VirtualClock(datetime(2026, 7, 14, tzinfo=UTC))
        channel = self.channel(base, clock)
        for _ in range(3):
            assert (await channel.send(message("etr_set", "zh-CN", "openid-1", "wechat"))).ok
        assert handler.tokens_issued == 1
        await clock.advance_to(datetime(2026, 7, 14, 1, 56, tzinfo=UTC))  # 5 min margin
        result = await channel.send(message("restored", "zh-CN", "openid-1", "wechat"))
        await channel.aclose()
        assert (result.ok, result.provider_id, handler.tokens_issued) == (True, "200228332", 2)
        sent = json.loads(handler.requests[-1]["body"])
        assert (sent["touser"], sent["template_id"]) == ("openid-1", "TPL-1")
        assert "恢复供电" in sent["data"]["content"]["value"]

    async def test_expired_token_is_refreshed_once(
        self, gateway: tuple[str, type[Gateway]]
    ) -> None:
        base, handler = gateway
        handler.reject_tokens.add("t1")
        channel = self.channel(base, VirtualClock(datetime(2026, 7, 14, tzinfo=UTC)))
        result = await channel.send(message("etr_set", "en", "openid-1", "wechat"))
        await channel.aclose()
        assert result.ok
        assert [r["query"]["access_token"] for r in handler.requests] == [["t1"], ["t2"]]

    @pytest.mark.parametrize(("user", "retryable"), [("busy-user", True), ("unknown-user", False)])
    async def test_errcodes_classified(
        self, gateway: tuple[str, type[Gateway]], user: str, retryable: bool
    ) -> None:
        channel = self.channel(gateway[0], VirtualClock(datetime(2026, 7, 14, tzinfo=UTC)))
        result = await channel.send(message("etr_set", "en", user, "wechat"))
        await channel.aclose()
        assert (result.ok, result.retryable) == (False, retryable)

    async def test_bad_app_secret_is_permanent(self, gateway: tuple[str, type[Gateway]]) -> None:
        clock = VirtualClock(datetime(2026, 7, 14, tzinfo=UTC))
        channel = self.channel(gateway[0], clock, secret="wrong")
        result = await channel.send(message("etr_set", "en", "openid-1", "wechat"))
        await channel.aclose()
        assert (result.ok, result.retryable) == (False, False)
        assert result.error is not None
        assert "40125" in result.error


class TestWebhookChannel:
    async def test_receiver_verifies_signature(self, gateway: tuple[str, type[Gateway]]) -> None:
        base, handler = gateway
        channel = WebhookChannel(SECRET, WallClock())
        result = await channel.send(message("restored", "en", f"{base}/hook/ok", "webhook"))
        await channel.aclose()
        assert result.ok, result.error
        body = json.loads(handler.requests[0]["body"])
        assert (body["stage"], body["customer_id"]) == ("restored", "C000001")

    async def test_wrong_secret_is_rejected_permanently(
        self, gateway: tuple[str, type[Gateway]]
    ) -> None:
        channel = WebhookChannel("not-the-secret", WallClock())
        result = await channel.send(message("restored", "en", f"{gateway[0]}/hook/ok", "webhook"))
        await channel.aclose()
        assert (result.ok, result.retryable) == (False, False)
        assert result.error is not None
        assert "401" in result.error

    async def test_receiver_5xx_is_retryable(self, gateway: tuple[str, type[Gateway]]) -> None:
        channel = WebhookChannel(SECRET, WallClock())
        result = await channel.send(message("restored", "en", f"{gateway[0]}/hook/down", "webhook"))
        await channel.aclose()
        assert (result.ok, result.retryable) == (False, True)

    def test_verify_signature_rejects_tampering_and_stale_timestamps(self) -> None:
        from services.notify.channels.webhook import sign

        sig = sign(SECRET, "1000", '{"a":1}')
        assert verify_signature(SECRET, "1000", '{"a":1}', sig, now=1100)
        assert not verify_signature(SECRET, "1000", '{"a":2}', sig, now=1100)
        assert not verify_signature(SECRET, "1000", '{"a":1}', sig, now=2000)


class TestFileChannel:
    async def test_one_json_line_per_message(self, tmp_path: Path) -> None:
        clock = VirtualClock(datetime(2026, 7, 14, 3, tzinfo=UTC))
        channel = FileChannel(tmp_path / "out" / "messages.jsonl", clock)
        for stage in ("outage_detected", "restored"):
            assert (await channel.send(message(stage, "zh-CN", "+8613800000001", "sms"))).ok
        lines = (tmp_path / "out" / "messages.jsonl").read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines]
        assert [r["stage"] for r in records] == ["outage_detected", "restored"]
        assert set(records[0]) == {
            "customer_id", "incident_id", "stage", "channel", "language", "to", "body", "sent_at",
        }  # fmt: skip
        assert records[1]["sent_at"] == "2026-07-14T03:00:00+00:00"
        assert records[1]["channel"] == "sms"
