"""Settings of the notify service: gateways, secrets, rates (prefix ``OUTAGEDESK_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from services.common.settings import CommonSettings


class NotifySettings(CommonSettings):
    # SMTP (e-mail)
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "OutageDesk <noreply@outagedesk.invalid>"
    smtp_starttls: bool | None = None  # None: upgrade when the server offers STARTTLS
    smtp_use_tls: bool = False  # implicit TLS (port 465)
    # HTTP SMS gateway
    sms_gateway_url: str | None = None
    sms_gateway_key: SecretStr | None = None
    sms_body_format: Literal["json", "form"] = "json"
    sms_auth_header: str = "Authorization"
    sms_auth_scheme: str = "Bearer"  # header value is "<scheme> <key>"; empty: the key alone
    # WeChat official-account template messages
    wechat_base_url: str = "https://api.weixin.qq.com"
    wechat_app_id: str | None = None
    wechat_app_secret: SecretStr | None = None
    wechat_template_ids: dict[str, str] = Field(default_factory=dict)  # stage or "default"
    # signed webhooks
    webhook_secret: SecretStr | None = None
    # demo / file channel: every channel writes here instead of a gateway when set
    messages_file: Path | None = None
    # channel → (messages per second, burst)
    channel_rates: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {
            "sms": (20.0, 50.0),
            "wechat": (50.0, 100.0),
            "email": (10.0, 20.0),
            "webhook": (50.0, 100.0),
        }
    )
    http_timeout_s: float = Field(default=10.0, gt=0)
    brand_zh: str = "国网供电"
    brand_en: str = "State Grid"
    hotline: str = "95598"
    survey_rate: float = Field(default=0.2, ge=0, le=1)
