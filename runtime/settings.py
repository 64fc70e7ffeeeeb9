"""reelcast settings: environment variables with the REELCAST_ prefix, or a .env file.

Only the runtime layer (this package) reads settings, for the flows and the CLI; packages
get explicit arguments, and the methods below build the small config objects they take.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from retail.errors import ReelcastError

if TYPE_CHECKING:  # imported where used: every command reads settings, few need these
    from campaigns.audience import AudienceRules
    from campaigns.emails import Letterhead
    from compliance.claims import ClaimsPolicy
    from delivery.links import LinkKeys
    from retail.remote_images import FetchPolicy
    from runtime.workspace import Workspace

REPO_ROOT = Path(__file__).resolve().parent.parent


def _bundled(name: str) -> Path:
    """templates/ and assets/ beside the packages (editable install) or in the wheel's data."""
    beside = REPO_ROOT / name
    if beside.is_dir():
        return beside
    return REPO_ROOT / "reelcast_data" / name


class Settings(BaseSettings):
    """Everything an operator may set. Defaults run the demo with no keys and no servers."""

    model_config = SettingsConfigDict(
        env_prefix="REELCAST_", env_file=".env", extra="ignore", validate_default=True
    )

    workspace: Path = Field(
        Path(".reelcast"),
        description="Folder for everything a run produces: state, renders, mailbox. "
        "Deleting it resets the demo.",
    )
    database_url: SecretStr | None = Field(
        None,
        description="Where reelcast keeps its state (outbox, suppression list, tracking "
        "events, audit log, metrics, vendor ledger) when one machine is not enough: "
        "postgresql+psycopg://user:password@host:5432/reelcast. Unset: SQLite files in the "
        "workspace.",
    )
    smtp_host: str | None = Field(
        None,
        description="SMTP relay host. Unset: reelcast starts its own SMTP server on 127.0.0.1 "
        "that stores mail in <workspace>/mail (a Maildir).",
    )
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    esp_url: str | None = Field(
        None,
        description="Base URL of a SendGrid-v3-style email API. Set: emails go through it "
        "instead of SMTP.",
    )
    esp_api_key: SecretStr | None = Field(None, description="API key of the email API.")
    sender: str = Field("Northwind Market <shop@example.com>", description="From: address")
    postal_address: str = Field(
        "Northwind Market GmbH, Musterstraße 1, 10115 Berlin, Germany",
        description="Sender's postal address for the email footer (CAN-SPAM).",
    )
    unsubscribe_mailto: str = Field("unsubscribe@example.com", description="mailto: opt-out")
    unsubscribe_maildir: Path | None = Field(
        None,
        description="The Maildir that mail to unsubscribe_mailto is delivered to: each "
        "dispatch honours the requests in it before sending (also `reelcast suppress "
        "mailbox`). Unset: mailed requests must be handled by hand.",
    )
    public_base_url: str = Field(
        "http://127.0.0.1:8010",
        description="Base URL of the tracking app used in email links (https in production).",
    )
    ai_label: str = Field(
        "AI-generated video",
        min_length=2,
        max_length=60,
        description="What the email and landing page say under a video whose template "
        "shows generated media (generated_media: true); other videos say 'Personalized "
        "video'.",
    )
    gallery_link_hours: float = Field(
        72.0,
        gt=0,
        le=24 * 366,
        description="How long the signed link to a campaign's preview gallery (served by "
        "the tracking app) works, in hours; at least as long as the run waits for approval.",
    )
    pseudonym_secret: SecretStr | None = Field(
        None,
        description="Key for pseudonymous customer ids and signed links. Unset: a random key "
        "is created once in <workspace>/secret.key.",
    )
    link_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='Link signing keys by id, JSON {"2026-12": "<32+ random hex>", …}: '
        "add a key and point REELCAST_LINK_KEY_ID at it to roll keys; keep an old key as "
        "long as its links should work. Unset: links are signed with the workspace secret.",
    )
    link_key_id: str | None = Field(
        None, description="The id (in REELCAST_LINK_KEYS) of the key that signs new links."
    )
    audit_key: SecretStr | None = Field(
        None,
        min_length=16,
        description="Key of the audit log's HMAC chain and checkpoints (at least 16 "
        "characters). Set it in production, from outside the workspace: whoever holds it can "
        "rewrite the log undetected. Unset: derived from the pseudonym key (secret.key in the "
        "workspace), which catches accidental edits but not someone who can read the "
        "workspace.",
    )
    renderer: Literal["local", "moviepy", "vendor"] = Field(
        "local",
        description="Video renderer: local (our compositor and ffmpeg, here), moviepy (a "
        "MoviePy 2 composition, here; the moviepy extra) or vendor (HTTP API).",
    )
    vendor_url: str | None = Field(None, description="The video vendor's API root.")
    vendor_api_key: SecretStr | None = None
    vendor_webhook_secret: SecretStr | None = None
    vendor_webhook_url: str | None = None
    vendor_price_per_second: float = Field(0.0, ge=0, description="Cost per rendered second")
    vendor_first_names: bool = Field(
        False, description="May first names reach the vendor? Off: headlines without names."
    )
    vendor_fallback: Literal["local", "none"] = Field(
        "local", description="Render locally when the vendor fails past its retry budget."
    )
    render_store: str | None = Field(
        None,
        description="Where finished renders are kept for every worker and the tracking app: "
        "a folder, or s3://bucket/prefix on any S3-compatible store (needs the s3 extra: "
        "pip install 'reelcast[s3]'). A render made on one worker is reused by all; "
        "<workspace>/renders is then this machine's cache. Unset: <workspace>/renders itself.",
    )
    render_store_endpoint_url: str | None = Field(
        None,
        description="S3-compatible endpoint of the render store (MinIO, Ceph, R2, …). Unset: "
        "AWS, or AWS_ENDPOINT_URL.",
    )
    render_store_key_id: str | None = Field(
        None,
        description="Access key id for the render store. Unset: AWS_ACCESS_KEY_ID, "
        "~/.aws or an instance role, as botocore finds them.",
    )
    render_store_secret: SecretStr | None = Field(
        None, description="Secret access key for the render store. Unset: as botocore finds it."
    )
    render_store_region: str | None = Field(
        None, description="Region of the render store's bucket. Unset: AWS_REGION or ~/.aws."
    )
    render_store_url_ttl_s: int = Field(
        3600,
        ge=60,
        le=7 * 24 * 3600,
        description="How long a presigned render-store URL (a video the tracking app "
        "redirects to) stays valid, in seconds.",
    )
    image_fetch_concurrency: int = Field(
        8, ge=1, le=64, description="Product pictures given by URL fetched at the same time."
    )
    image_fetch_timeout_s: float = Field(
        10.0, gt=0, le=300, description="Connect and read timeout of one picture fetch."
    )
    image_fetch_max_mb: float = Field(
        20.0, gt=0, le=200, description="Product pictures larger than this are refused."
    )
    image_fetch_allow_private: bool = Field(
        False,
        description="Let picture URLs (and their redirects) reach private, loopback and "
        "link-local addresses. Off: only public addresses, so a feed cannot make reelcast "
        "read the network it runs in.",
    )
    image_fetch_allowed_networks: list[str] = Field(
        default_factory=list,
        description='Private networks picture URLs may reach anyway, as JSON: ["10.20.0.0/16"].',
    )
    dask_address: str | None = Field(
        None,
        description="Address of a Dask scheduler (tcp://host:8786). Set: renders fan out "
        "over its workers (prefect-dask) instead of threads on this machine.",
    )
    render_workers: int = Field(2, ge=1, le=64, description="Videos rendered at the same time.")
    campaign_chunk: int = Field(
        2000,
        ge=1,
        description="Customers a campaign picks, renders, checks, queues and sends together: "
        "its memory grows with this (about 70 kB a customer while a chunk is rendered), not "
        "with the size of the list.",
    )
    video_crf: int = Field(23, ge=0, le=51)
    video_preset: str = Field("veryfast")
    scene_reuse: bool = Field(
        True,
        description="Render each video from scene segments made once and shared (only the "
        "scenes that show a first name are rendered per customer); false renders every "
        "video whole.",
    )
    personalize: bool = Field(True, description="Allow first names in videos and subjects.")
    consent_overrides: dict[str, Literal["opt-in", "opt-out"]] = Field(
        default_factory=dict,
        description="Consent regime per country, overriding the defaults, as JSON: "
        '{"AU": "opt-out"}. Defaults: EU/EEA, UK, CH, CA, AU, JP opt-in; US opt-out; '
        "any other country opt-in.",
    )
    frequency_cap_emails: int = Field(3, ge=1, description="Campaign emails per customer…")
    frequency_cap_days: int = Field(7, ge=1, description="…within this many days.")
    holdout_salt: str = Field("reelcast", description="Salt of the holdout hash.")
    recs_gate_metric: str = Field("ndcg@10", description="Offline metric that gates models.")
    recs_gate_max_drop: float = Field(
        0.02,
        ge=0,
        le=1,
        description="A new model may be this much worse (relative) than "
        "the approved one and still be approved automatically.",
    )
    outbox_body_retention_days: float = Field(
        0.0,
        ge=0,
        description="Days a sent email's body (with its GIF) stays in the outbox after it is "
        "sent; 0: dropped at the end of the send pass. Keys, states and ids stay.",
    )
    claims_policy: Path | None = Field(
        None,
        description="Claims policy YAML (free/superlatives/urgency/discounts); unset: "
        "the packaged default.",
    )
    templates_dir: Path = Field(default_factory=lambda: _bundled("templates"))
    assets_dir: Path = Field(default_factory=lambda: _bundled("assets"))

    @classmethod
    def for_workspace(cls, workspace: Path | str | None) -> Settings:
        """The settings, with the workspace folder given on the command line or as a flow
        parameter in place of REELCAST_WORKSPACE (None: as configured)."""
        return cls(workspace=Path(workspace)) if workspace else cls()

    def open_workspace(self) -> Workspace:
        """The workspace folder, with the database URL when state lives on a server."""
        from runtime.workspace import Workspace

        url = self.database_url.get_secret_value() if self.database_url else None
        return Workspace(self.workspace, database_url=url)

    def secret(self) -> bytes:
        """The pseudonymization key: from settings, else created once in the workspace."""
        if self.pseudonym_secret is not None:
            return self.pseudonym_secret.get_secret_value().encode()
        if self.database_url is not None:
            # Each machine would make a key of its own: pseudonyms and signed links would
            # differ from one worker to the next.
            raise ReelcastError(
                "REELCAST_DATABASE_URL is set, so several machines may share this state: "
                "set REELCAST_PSEUDONYM_SECRET (the same value on every machine, e.g. "
                "`openssl rand -hex 32`) instead of a key file in each workspace"
            )
        path = self.workspace / "secret.key"
        if not path.exists():
            create_secret_file(path)
        return path.read_text().strip().encode()

    def audit_log_key(self) -> bytes:
        """The audit log's key: `audit_key` if set, else one derived from the pseudonym key
        with a label of its own (a pseudonym or a link signature never equals an audit MAC)."""
        if self.audit_key is not None:
            return self.audit_key.get_secret_value().encode()
        return hmac.new(self.secret(), b"reelcast audit log key v1", hashlib.sha256).digest()

    def audience_rules(self) -> AudienceRules:
        """Consent overrides, the frequency cap and the holdout salt, for every campaign."""
        from campaigns.audience import AudienceRules
        from compliance.audience import FrequencyCap

        return AudienceRules(
            consent_overrides=dict(self.consent_overrides),
            cap=FrequencyCap(self.frequency_cap_emails, self.frequency_cap_days),
            holdout_salt=self.holdout_salt,
        )

    def letterhead(self) -> Letterhead:
        """Sender, postal address, link base and templates of every email."""
        from campaigns.emails import Letterhead
        from delivery.links import Links

        return Letterhead(
            links=Links(self.public_base_url, unsubscribe_address=self.unsubscribe_mailto),
            sender=self.sender,
            postal_address=self.postal_address,
            templates_dir=self.templates_dir,
            secret=self.signing_keys(),
        )

    def signing_keys(self) -> LinkKeys:
        """The keys links are signed with: REELCAST_LINK_KEYS (id → key) with
        REELCAST_LINK_KEY_ID naming the current one, else the workspace secret alone.
        The workspace secret always reads links made before keys had ids."""
        from delivery.links import LinkKeys

        return LinkKeys(
            current=self.link_key_id,
            keys={k: v.get_secret_value().encode() for k, v in self.link_keys.items()},
            legacy=self.secret(),
        )

    def image_fetch_policy(self) -> FetchPolicy:
        """How product pictures given by URL are fetched (REELCAST_IMAGE_FETCH_*)."""
        from retail.remote_images import FetchPolicy

        try:
            return FetchPolicy(
                concurrency=self.image_fetch_concurrency,
                timeout_s=self.image_fetch_timeout_s,
                max_bytes=int(self.image_fetch_max_mb * 1_000_000),
                allow_private=self.image_fetch_allow_private,
                allowed_networks=tuple(self.image_fetch_allowed_networks),
            )
        except ValueError as exc:
            raise ReelcastError(
                f'REELCAST_IMAGE_FETCH_ALLOWED_NETWORKS: {exc} (write networks as ["10.20.0.0/16"])'
            ) from None

    def claims(self) -> ClaimsPolicy:
        """The claims policy in force (the packaged default unless a file is set)."""
        from compliance.claims import load_policy

        return load_policy(self.claims_policy) if self.claims_policy else load_policy()


def create_secret_file(path: Path) -> None:
    """Write a new random key to `path`, readable by its owner only, unless one is there.

    The key is written whole, with mode 0600 from the start, to a private temporary file
    that is then linked into place: the link fails if another process made the key first,
    so two processes starting together agree on one key, and nobody ever reads a partly
    written or world-readable one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
