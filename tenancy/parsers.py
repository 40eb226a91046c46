"""The API's JSON parser (``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]`` and the public endpoints)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework import exceptions, parsers


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with JSON nested deeper than Python's decoder goes (``[[[[…``, which raises RecursionError,
    not ValueError) refused as a 400 like any other bad JSON instead of failing as a 500."""

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None
