"""The API's JSON renderer (``REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"]``) and content negotiation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rest_framework import negotiation, renderers
from rest_framework.renderers import BaseRenderer


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


class ContentNegotiation(negotiation.DefaultContentNegotiation):
    """DRF's negotiation, answered without parsing for what nearly every client sends: no ``Accept`` header,
    ``*/*``, or exactly the first renderer's media type, with no ``?format=`` and no format suffix. Each of these
    picks the first renderer with its own media type, as DRF's parse would; anything else goes through DRF's."""

    def select_renderer(
        self, request: Any, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderers = renderers if isinstance(renderers, list) else list(renderers)
        if renderers and not format_suffix:
            first = renderers[0]
            accept = request.META.get("HTTP_ACCEPT")
            if accept in (None, "*/*", first.media_type) and self.settings.URL_FORMAT_OVERRIDE not in request.GET:
                return first, first.media_type
        chosen: tuple[BaseRenderer, str] = super().select_renderer(request, renderers, format_suffix)
        return chosen
