"""How to reach the video vendor and how patient to be with it (flows build this from settings)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class VendorConfig(BaseModel):
    """The vendor client's settings. Defaults suit the real API; tests shorten the waits."""

    model_config = ConfigDict(frozen=True)

    base_url: str = Field(description="The API root, e.g. http://127.0.0.1:8020")
    api_key: SecretStr
    webhook_secret: SecretStr | None = Field(
        None, description="Shared secret of signed webhooks. None: poll only."
    )
    webhook_url: str | None = Field(
        None,
        description="Public URL the vendor posts webhooks to (mount WebhookInbox.app() there)."
        " None with a secret: a receiver is started on 127.0.0.1.",
    )
    price_per_second: Decimal = Field(Decimal("0"), ge=0, description="Price per render second")
    allow_first_name: bool = Field(False, description="May first names reach the vendor?")
    requests_per_window: int = Field(30, ge=1, description="The vendor's rate limit…")
    window_s: float = Field(10.0, gt=0, description="…per this many seconds")
    request_timeout_s: float = Field(30.0, gt=0)
    attempts: int = Field(6, ge=1, description="Tries per request before giving up")
    backoff_s: float = Field(0.5, gt=0, description="First wait between tries (doubles)")
    backoff_max_s: float = Field(20.0, gt=0)
    retry_after_max_s: float = Field(120.0, gt=0, description="Longest Retry-After obeyed")
    poll_s: float = Field(1.0, gt=0, description="First poll interval without webhooks")
    poll_max_s: float = Field(15.0, gt=0)
    slow_poll_s: float = Field(30.0, gt=0, description="Poll interval with webhooks (lost ones)")
    render_timeout_s: float = Field(900.0, gt=0, description="Longest wait for one render")
    render_attempts: int = Field(2, ge=1, description="Tries when the vendor reports 'failed'")
    webhook_tolerance_s: float = Field(300.0, gt=0, description="Accepted webhook clock skew")
