"""creative.vendor: rendering through a video vendor's HTTP API, and a simulator of one.

payload (what may leave the house) → client (async: submit once, wait, download, file)
→ renderer (the blocking `Renderer` interface, and the local fallback). The ledger keeps
key→render id, charges and fallbacks in the workspace (or in PostgreSQL, shared by
several processes); the simulator is the vendor on loopback that tests and
`reelcast vendor-sim` use.
"""

from creative.render import CampaignCosts
from creative.vendor.client import VendorClient
from creative.vendor.config import VendorConfig
from creative.vendor.errors import (
    PayloadError,
    RenderFailed,
    ResultExpired,
    VendorError,
    VendorUnavailable,
)
from creative.vendor.ledger import RenderLedger
from creative.vendor.payload import build_payload, check_customer_values, check_payload
from creative.vendor.renderer import FallbackRenderer, VendorRenderer
from creative.vendor.webhooks import WebhookInbox

__all__ = [
    "CampaignCosts",
    "FallbackRenderer",
    "PayloadError",
    "RenderFailed",
    "RenderLedger",
    "ResultExpired",
    "VendorClient",
    "VendorConfig",
    "VendorError",
    "VendorRenderer",
    "VendorUnavailable",
    "WebhookInbox",
    "build_payload",
    "check_customer_values",
    "check_payload",
]
