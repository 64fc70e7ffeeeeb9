"""What a recipient's landing page shows, read back from the campaign's audit log.

The campaign flow audits, per pseudonymous customer, the products picked ("pick") and
the render key of their video ("render"). The landing page needs exactly that, so it
reads it from there instead of keeping a second copy of every pick.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import cast

from compliance.audit import AuditLog
from compliance.pseudonym import pseudonymize
from delivery.tracking_pages import Landing, LandingProduct
from retail.types import Product
from storage.targets import Target, exists


class AuditLanding:
    """A `LandingSource` over the workspace's audit log and the retailer's catalog.

    `secret` is the pseudonymization key the campaign flow used. Products no longer in
    `products` are left off the page; a customer with no audited pick gets None (404).
    """

    def __init__(self, audit_db: Target, secret: bytes, products: Mapping[str, Product]) -> None:
        self.audit_db = audit_db
        self.secret = secret
        self.products = dict(products)
        self._log: AuditLog | None = None
        self._labels: dict[str, str | None] = {}

    def _audit(self) -> AuditLog | None:
        if self._log is None and exists(self.audit_db):
            self._log = AuditLog(self.audit_db)
        return self._log

    def _label(self, audit: AuditLog, campaign_id: str) -> str | None:
        """The label the campaign's template gave its videos (read once per campaign: the
        log has no index by campaign)."""
        if campaign_id not in self._labels:
            label = None
            for record in audit.records(campaign=campaign_id, kind="template"):
                if isinstance(record.data.get("label"), str):
                    label = str(record.data["label"])
            self._labels[campaign_id] = label
        return self._labels[campaign_id]

    def close(self) -> None:
        """Close the audit log connection, if one was opened."""
        if self._log is not None:
            self._log.close()
            self._log = None

    def __call__(self, campaign_id: str, customer_id: str) -> Landing | None:
        audit = self._audit()
        if audit is None:
            return None
        subject = pseudonymize(self.secret, customer_id)
        picked: list[str] | None = None
        render_key: str | None = None
        label = self._label(audit, campaign_id)
        for record in audit.records(subject=subject, campaign=campaign_id):
            if record.kind == "pick":
                # The flow audits a pick as {"products": [product ids]} (JSON in the log).
                products = cast(Iterable[object], record.data.get("products", []))
                picked = [str(p) for p in products]
            elif record.kind == "render" and record.data.get("key"):
                render_key = str(record.data["key"])
        if picked is None:
            return None
        shown = tuple(
            LandingProduct(p.id, p.title, p.brand, p.url)
            for pid in picked
            if (p := self.products.get(pid)) is not None
        )
        return Landing(render_key=render_key, products=shown, label=label)
