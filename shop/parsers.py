"""The API's one request parser: JSON, bounded in size and depth."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser as DrfJSONParser
from rest_framework.parsers import get_encoding  # type: ignore[attr-defined]  # new in 3.16

# Deeper than any request of this API; well below Python's recursion limit, so no
# code that walks the parsed value recursively (serializers, validators) can overflow.
MAX_DEPTH = 32


class RequestTooLarge(APIException):
    status_code = 413
    default_detail = "Request body too large."
    default_code = "request_too_large"


class JSONParser(DrfJSONParser):
    """DRF's JSON parser, plus the limits it lacks.

    A body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is a 413; nesting deeper than
    ``MAX_DEPTH`` (which made the standard parser raise ``RecursionError``), text
    that is not valid UTF-8 (lone surrogates from ``\\ud800`` escapes included)
    and ``NaN``/``Infinity`` are 400s.
    """

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = b"" if stream is None else stream.read(limit + 1 if limit is not None else -1)
        if limit is not None and len(raw) > limit:
            raise RequestTooLarge(f"Request body over {limit} bytes.")
        encoding = get_encoding(parser_context or {})  # refuses bytes-to-bytes codecs (bz2...)
        try:
            text = raw.decode(encoding)
            value = json.loads(text, parse_constant=_reject_constant)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        _check(value)
        return value


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _check(value: Any) -> None:
    """Raise ``ParseError`` for nesting over ``MAX_DEPTH`` or a string that is not UTF-8."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                _check_text(key)
                stack.append((child, depth + 1))
        else:
            stack.extend((child, depth + 1) for child in item)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ParseError("JSON parse error - a string holds an unpaired surrogate") from None
