"""Build the channels a deployment has configured, keyed by customer channel name."""

from __future__ import annotations

from services.common.clock import Clock
from services.notify.channels.base import Channel
from services.notify.channels.file import FileChannel
from services.notify.channels.sms_http import SmsHttpChannel
from services.notify.channels.smtp import SmtpChannel
from services.notify.channels.webhook import WebhookChannel
from services.notify.channels.wechat import WeChatChannel
from services.notify.settings import NotifySettings

ALL_CHANNELS = ("sms", "wechat", "email", "webhook")


def build_channels(settings: NotifySettings, clock: Clock) -> dict[str, Channel]:
    """Channel name → adapter. With ``messages_file`` set (the demo) every channel writes
    to that file; otherwise only channels whose gateway is configured are present, and
    customers are reached on the first of their contacts that is."""
    if settings.messages_file is not None:
        file = FileChannel(settings.messages_file, clock)
        return dict.fromkeys(ALL_CHANNELS, file)
    timeout = settings.http_timeout_s
    channels: dict[str, Channel] = {}
    if settings.sms_gateway_url:
        key = settings.sms_gateway_key
        channels["sms"] = SmsHttpChannel(
            settings.sms_gateway_url,
            api_key=key.get_secret_value() if key else None,
            body_format=settings.sms_body_format,
            auth_header=settings.sms_auth_header,
            auth_scheme=settings.sms_auth_scheme,
            timeout_s=timeout,
        )
    if settings.wechat_app_id and settings.wechat_app_secret:
        channels["wechat"] = WeChatChannel(
            settings.wechat_base_url,
            settings.wechat_app_id,
            settings.wechat_app_secret.get_secret_value(),
            settings.wechat_template_ids,
            clock,
            timeout_s=timeout,
        )
    if settings.smtp_host:
        password = settings.smtp_password
        channels["email"] = SmtpChannel(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from,
            username=settings.smtp_username,
            password=password.get_secret_value() if password else None,
            start_tls=settings.smtp_starttls,
            use_tls=settings.smtp_use_tls,
            timeout_s=timeout,
        )
    if settings.webhook_secret:
        channels["webhook"] = WebhookChannel(
            settings.webhook_secret.get_secret_value(), clock, timeout_s=timeout
        )
    return channels
