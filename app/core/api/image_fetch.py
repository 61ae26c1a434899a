"""Images a chat request gives by web address, fetched only when the user allowed it in the server
panel (it is network traffic nobody at the computer sees): each with a time limit, a size limit, and
only an image as the answer; each failure a 400 naming the part."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from app.core.api.errors import ApiError

#: An image fetched may be at most this large, and must arrive within this many seconds.
MAX_FETCH_BYTES = 20 << 20
FETCH_TIMEOUT_S = 15.0


async def fetch_images(addresses: Sequence[tuple[str, str]], allowed: bool) -> dict[str, bytes]:
    """The bytes of each (where, url) image, by url (ApiError naming `where` for one that cannot be
    had; one at a time: a request rarely gives more than a few)."""
    if not addresses:
        return {}
    if not allowed:
        raise fetching_off(addresses[0][0])
    fetched: dict[str, bytes] = {}
    async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_S, follow_redirects=True, max_redirects=3) as client:
        for where, url in addresses:
            if url not in fetched:
                fetched[url] = await _fetch(client, url, where)
    return fetched


def fetching_off(where: str) -> ApiError:
    """The refusal of an image by web address while fetching is off."""
    return ApiError(
        400,
        f"{where}: fetching images from web addresses is off in this server (it is network traffic "
        "the user did not see). Send the image itself, as a data: URL (data:image/png;base64,...), "
        "or allow fetching images in Fireside's server panel.",
        "unsupported_image_url",
        where,
    )


async def _fetch(client: httpx.AsyncClient, url: str, where: str) -> bytes:
    try:
        async with client.stream("GET", url, headers={"Accept": "image/*"}) as response:
            if response.status_code != 200:
                raise ApiError(
                    400, f"{where}: {url} answered {response.status_code}.", "invalid_image_url", where
                )
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if not kind.startswith("image/"):
                raise ApiError(
                    400,
                    f"{where}: {url} is not an image (it is “{kind or 'unknown'}”).",
                    "invalid_image_url",
                    where,
                )
            data = bytearray()
            async for block in response.aiter_bytes():
                data += block
                if len(data) > MAX_FETCH_BYTES:
                    raise ApiError(
                        400, f"{where}: the image at {url} is larger than {MAX_FETCH_BYTES >> 20} MB.",
                        "invalid_image_url", where,
                    )  # fmt: skip
            return bytes(data)
    except httpx.HTTPError as exc:
        raise ApiError(
            400, f"{where}: {url} could not be fetched ({exc}).", "invalid_image_url", where
        ) from exc
