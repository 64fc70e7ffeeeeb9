"""creative: from a customer's Pick to a short templated video.

template (YAML + sandboxed Jinja2 texts, aspect variants) → check_template / preview →
Storyboard (every text and image resolved, content-keyed) → Renderer (local ffmpeg: MP4,
poster, GIF) → qc_video (one decode pass) before anything is sent.
"""

from creative.check import Issue, check_template, preview_template
from creative.errors import CreativeError, RenderError, TemplateError
from creative.probe import VideoInfo, check_video, probe_video
from creative.qc import Expect, Verdict, qc_video
from creative.render import LocalRenderer, Render, Renderer
from creative.storyboard import Encode, Storyboard, build_storyboard
from creative.template import Template, load_template
from creative.textfit import FittedText, fit_text

__all__ = [
    "CreativeError",
    "Encode",
    "Expect",
    "FittedText",
    "Issue",
    "LocalRenderer",
    "Render",
    "RenderError",
    "Renderer",
    "Storyboard",
    "Template",
    "TemplateError",
    "Verdict",
    "VideoInfo",
    "build_storyboard",
    "check_template",
    "check_video",
    "fit_text",
    "load_template",
    "preview_template",
    "probe_video",
    "qc_video",
]
