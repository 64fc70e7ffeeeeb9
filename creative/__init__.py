"""creative: from a customer's Pick to a short templated video.

template (YAML + sandboxed Jinja2 texts) → Storyboard (every text and image resolved,
content-keyed) → Renderer (local ffmpeg today, a vendor later) → probe/check the file.
"""

from creative.errors import CreativeError, RenderError, TemplateError
from creative.probe import VideoInfo, check_video, probe_video
from creative.render import LocalRenderer, Render, Renderer
from creative.storyboard import Encode, Storyboard, build_storyboard
from creative.template import Template, load_template
from creative.textfit import FittedText, fit_text

__all__ = [
    "CreativeError",
    "Encode",
    "FittedText",
    "LocalRenderer",
    "Render",
    "RenderError",
    "Renderer",
    "Storyboard",
    "Template",
    "TemplateError",
    "VideoInfo",
    "build_storyboard",
    "check_video",
    "fit_text",
    "load_template",
    "probe_video",
]
