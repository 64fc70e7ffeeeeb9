"""Where a run's recommendation models are kept: the model registry the settings imply."""

from __future__ import annotations

from creative.store import RenderStore, StoreError
from recs.errors import RecsError
from recs.registry import Registry
from recs.store import ModelStore
from runtime.renderers import open_render_store
from runtime.settings import Settings
from runtime.workspace import Workspace


def open_registry(settings: Settings, ws: Workspace, store: RenderStore | None = None) -> Registry:
    """The model registry: `<workspace>/models/` alone, or, when the render store is
    shared (REELCAST_RENDER_STORE), its `models/` folder beside the renders, with the
    same credentials, and `<workspace>/models/` as this machine's cache. A model trained
    and approved on one machine is then the one every machine's campaigns use."""
    if not settings.render_store and store is None:
        return Registry(ws.models)
    try:
        store = store if store is not None else open_render_store(settings, ws)
    except StoreError as exc:
        raise RecsError(f"model registry: {exc}") from None
    if store.holds(ws.renders):  # the renders folder itself: nothing is shared
        return Registry(ws.models)
    return Registry(ws.models, ModelStore(store.url, fs=store.fs))
