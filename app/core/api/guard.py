"""Who may use the API server, and what a request body may be: checked before any work is done.

A web page in the user's browser can send requests to 127.0.0.1 too, so the server looks at where
a request comes from (`Origin`, `Host`) as well as its API key; and it reads at most
MAX_BODY_BYTES of a body, which must be a JSON object of Unicode text.
"""

from __future__ import annotations

import hmac
import json
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from app.core.api.config import ServerConfig, is_loopback
from app.core.api.schema import ApiError, find_lone_surrogate, validation_error

#: Request bodies larger than this are refused (a 128k-token conversation is about 0.5 MB of text;
#: images come as base64 data: URLs, a 20 MB photo as 27 MB).
MAX_BODY_BYTES = 32 * 1024 * 1024


def refusal(request: Request, config: ServerConfig) -> ApiError | None:
    """Why a request must be refused before anything else (origin, host, key), or None.

    A web page in the user's browser can send requests to 127.0.0.1 too. Browsers name the page in
    `Origin`: only pages served from this computer may use the server. And a page that rebinds its
    own domain name to 127.0.0.1 still sends that name as `Host`: while the server is for this
    computer only, a Host that is not a loopback name is refused.
    """
    origin = request.headers.get("origin")
    if origin and not is_loopback(urlsplit(origin).hostname or ""):
        return ApiError(403, f"Requests from web pages at {origin} are not allowed.", "origin_not_allowed")
    if not config.allow_network:
        host = urlsplit("//" + request.headers.get("host", "")).hostname or ""
        if not is_loopback(host):
            return ApiError(
                403, f"Host “{host}” is not this computer's loopback address.", "host_not_allowed"
            )
    if not _authorized(request, config.api_key):
        return ApiError(
            401,
            "Incorrect or missing API key. Send it as “Authorization: Bearer KEY”.",
            "invalid_api_key",
        )
    return None


def _authorized(request: Request, key: str | None) -> bool:
    if not key:
        return True
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key.encode())


async def read_body(request: Request, schema: type[BaseModel]) -> Any:
    """Read and validate the JSON body (size limit first, then JSON, then the fields)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        # A form or text/plain body is what a web page can send without asking the browser first.
        raise ApiError(
            415, "Send the body as JSON with “Content-Type: application/json”.", "invalid_content_type"
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, f"The request body is larger than {MAX_BODY_BYTES // 2**20} MiB.", "too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(
                413, f"The request body is larger than {MAX_BODY_BYTES // 2**20} MiB.", "too_large"
            )
        chunks.append(chunk)
    try:
        data = json.loads(b"".join(chunks))
        found = find_lone_surrogate(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"The request body is not valid JSON: {exc}.", "invalid_json") from exc
    except RecursionError:
        raise ApiError(400, "The request body is nested too deeply.", "invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object.", "invalid_json")
    if found is not None:
        where, index, char = found
        raise ApiError(
            400,
            f"{where}: the text holds a lone UTF-16 surrogate (U+{ord(char):04X}) at character "
            f"{index}. JSON allows it, but it is half of a character, not Unicode text; send the "
            "whole character (both halves of the pair).",
            "invalid_unicode",
            where,
        )
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from exc
