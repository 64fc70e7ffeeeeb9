"""Which renderer a run uses: this machine's, or the vendor's API with a local fallback;
and where its renders are kept (the render store)."""

from __future__ import annotations

from decimal import Decimal

from creative.encode import find_ffmpeg
from creative.errors import CreativeError
from creative.render import LocalRenderer, Renderer
from creative.store import KeyedRenderer, RenderStore, StoredRenderer
from runtime.settings import Settings
from runtime.workspace import Workspace


def open_render_store(settings: Settings, ws: Workspace) -> RenderStore:
    """The render store the settings name (REELCAST_RENDER_STORE), else the workspace's
    renders folder itself."""
    if not settings.render_store:
        return RenderStore(ws.renders, url_ttl_s=settings.render_store_url_ttl_s)
    secret = settings.render_store_secret
    return RenderStore(
        settings.render_store,
        endpoint_url=settings.render_store_endpoint_url,
        key_id=settings.render_store_key_id,
        secret=secret.get_secret_value() if secret is not None else None,
        region=settings.render_store_region,
        url_ttl_s=settings.render_store_url_ttl_s,
    )


def make_renderer(
    settings: Settings, ws: Workspace, campaign: str, store: RenderStore | None = None
) -> Renderer:
    """The local renderer, or the vendor's API (charged to `campaign`) with a local
    fallback, as the settings say; renders are made in the workspace's renders folder
    and shared through `store` (default: the one the settings name) when that is
    elsewhere. Close it when the run is done."""
    store = store if store is not None else open_render_store(settings, ws)
    shared = store.holds(ws.renders)
    renderer = _renderer(settings, ws, campaign, None if shared else store)
    return renderer if shared else StoredRenderer(renderer, store)


def _renderer(
    settings: Settings, ws: Workspace, campaign: str, store: RenderStore | None
) -> KeyedRenderer:
    local: LocalRenderer
    if settings.renderer == "moviepy":
        from creative.moviepy_render import MoviePyRenderer

        return MoviePyRenderer(crf=settings.video_crf, preset=settings.video_preset)
    if settings.scene_reuse:
        from creative.scenes import SceneRenderer

        # Segments are shared through the store like whole renders.
        local = SceneRenderer(crf=settings.video_crf, preset=settings.video_preset, store=store)
    else:
        local = LocalRenderer(crf=settings.video_crf, preset=settings.video_preset)
    if settings.renderer == "local":
        return local
    from creative.vendor.config import VendorConfig
    from creative.vendor.renderer import FallbackRenderer, VendorRenderer

    if not settings.vendor_url or settings.vendor_api_key is None:
        raise CreativeError(
            "REELCAST_RENDERER=vendor needs REELCAST_VENDOR_URL and REELCAST_VENDOR_API_KEY"
        )
    config = VendorConfig(
        base_url=settings.vendor_url,
        api_key=settings.vendor_api_key,
        webhook_secret=settings.vendor_webhook_secret,
        webhook_url=settings.vendor_webhook_url,
        price_per_second=Decimal(str(settings.vendor_price_per_second)),
        allow_first_name=settings.vendor_first_names,
    )
    vendor = VendorRenderer(config, ws.root, campaign=campaign, ledger=ws.vendor_db)
    return FallbackRenderer(vendor, local) if settings.vendor_fallback == "local" else vendor


def first_names_allowed(settings: Settings) -> bool:
    """Whether first names may appear in videos at all (see campaigns.plan)."""
    from campaigns.plan import may_show_first_names

    return may_show_first_names(
        settings.personalize, settings.renderer, settings.vendor_first_names
    )


def check_ffmpeg(settings: Settings) -> None:
    """Raise a CreativeError saying how to install ffmpeg when this run renders on this
    machine (or may fall back to it) and there is none: before anything starts, rather
    than one failed render per customer."""
    if settings.renderer != "vendor" or settings.vendor_fallback == "local":
        find_ffmpeg()
    if settings.renderer == "moviepy":
        from creative.moviepy_render import MOVIEPY_EXTRA, moviepy_available

        if not moviepy_available():
            raise CreativeError(f"REELCAST_RENDERER=moviepy needs MoviePy: {MOVIEPY_EXTRA}")
