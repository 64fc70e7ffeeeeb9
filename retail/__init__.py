"""Retail domain: products, customers, behaviour events, and the files they come from."""

from retail.types import (
    Consent,
    Customer,
    Event,
    EventType,
    Pick,
    Product,
)

__all__ = ["Consent", "Customer", "Event", "EventType", "Pick", "Product"]
