"""The API's JSON renderer (``REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"]``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import renderers


class _AsciiJSONRenderer(renderers.JSONRenderer):
    ensure_ascii = True


class JSONRenderer(renderers.JSONRenderer):
    """DRF's JSON renderer (UTF-8), except for text UTF-8 cannot hold: a lone surrogate, which a client can send as a
    JSON escape (``"\\ud800"``) and DRF's error messages repeat back ("... is not a valid choice"). Such an answer is
    written with every non-ASCII character escaped, which is the same JSON, instead of failing as a 500."""

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None
    ) -> bytes:
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            return _AsciiJSONRenderer().render(data, accepted_media_type, renderer_context)
