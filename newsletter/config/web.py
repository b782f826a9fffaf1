"""The web pages: ``[web]``."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator

from newsletter.config.base import ConfigModel, parse_duration


class WebConfig(ConfigModel):
    """The web endpoints (subscribe, unsubscribe, archive, feeds)."""

    base_url: str = "http://127.0.0.1:8025"
    host: str = "127.0.0.1"
    port: int = Field(8025, ge=1, le=65535)
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks (``10.0.0.0/8``) of reverse proxies whose
    ``X-Forwarded-For`` is believed; from any other peer the header is ignored."""
    pending_max_age: str = "3d"
    """How long a confirmation link works; pending addresses older than this are removed."""
    allow_http_one_click: bool = False
    """Send ``List-Unsubscribe-Post`` even when ``base_url`` is http (local testing only:
    RFC 8058 requires https)."""

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        for item in v:
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an address or network like 10.0.0.0/8") from None
        return tuple(i.strip() for i in v)

    @field_validator("pending_max_age")
    @classmethod
    def _pending_max_age(cls, v: str) -> str:
        if parse_duration(v) < timedelta(minutes=10):
            raise ValueError("must be at least 10m")
        return v
