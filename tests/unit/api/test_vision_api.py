"""Images through the API: OpenAI's image_url parts (data: URLs) for a model with a projector, sent
with the official openai client; every image the engine cannot use is a 400 naming the part."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from app.core.api.config import ServerConfig
from app.core.api.server import LocalServer
from app.core.inference.thread import InferenceThread
from tests.projector_writer import write_projector
from tests.unit.api.served import KEY, MODEL, Served, loaded_worker
from tests.unit.inference.test_vision import png


@pytest.fixture(scope="module")
def seeing(starter_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    projector = tmp_path_factory.mktemp("api-vision") / "mmproj-test-f16.gguf"
    write_projector(projector)
    worker: InferenceThread = loaded_worker(starter_model, projector)
    server = LocalServer(worker, ServerConfig(port=0, api_key=KEY))
    server.start()
    yield Served(worker, server)
    server.stop()
    worker.shutdown()


def data_url(data: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def ask(url: str, **image: Any) -> list[dict[str, Any]]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": url, **image}},
            ],
        }
    ]


def chat(served: Served, messages: list[dict[str, Any]]) -> openai.types.chat.ChatCompletion:
    return served.client.chat.completions.create(  # type: ignore[call-overload,no-any-return]
        model=MODEL, messages=messages, temperature=0, max_tokens=10
    )


def test_an_image_url_part_is_read_by_the_projector(seeing: Served) -> None:
    red, blue = data_url(png((230, 10, 10))), data_url(png((10, 10, 230), stripes=True))
    first = chat(seeing, ask(red))
    text_only = seeing.client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is in this picture?"}],
        temperature=0,
        max_tokens=10,
    )
    assert first.choices[0].message.content
    # The image's 16 positions are in the prompt.
    assert first.usage is not None and text_only.usage is not None
    assert first.usage.prompt_tokens == text_only.usage.prompt_tokens + 16
    assert chat(seeing, ask(blue)).choices[0].message.content != first.choices[0].message.content
    assert chat(seeing, ask(red)).choices[0].message.content == first.choices[0].message.content


@pytest.mark.parametrize(
    ("url", "image", "said"),
    [
        ("https://example.com/cat.png", {}, "fetching images from web addresses is off"),
        ("data:image/png;base64,@@@not-base64@@@", {}, "not valid base64"),
        ("data:image/png,rawbytes", {}, "must be a base64 data: URL"),
        (data_url(b"GIF89a but not really an image"), {}, "not an image Fireside can read"),
        (data_url(png((1, 2, 3)), "image/png"), {"detail": "high"}, "detail"),
    ],
    ids=["http-url", "bad-base64", "not-base64", "not-an-image", "detail-high"],
)
def test_an_image_the_engine_cannot_use_is_a_400_naming_it(
    seeing: Served, url: str, image: dict[str, Any], said: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        chat(seeing, ask(url, **image))
    assert said in refused.value.message
    assert chat(seeing, [{"role": "user", "content": "Hello"}]).choices[0].message.content  # serving goes on


def test_a_model_without_a_projector_refuses_images_by_name(served: Served) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        chat(served, ask(data_url(png((9, 9, 9)))))
    assert "reads text only" in refused.value.message


@pytest.fixture(scope="module")
def pictures() -> Iterator[str]:
    """A web server on 127.0.0.1 with a PNG, an HTML page and nothing else (its address)."""
    import http.server
    import threading

    picture = png((200, 10, 10))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/cat.png":
                body, kind = picture, "image/png"
            elif self.path == "/page.html":
                body, kind = b"<html>not a picture</html>", "text/html"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_images_by_web_address_are_fetched_only_when_allowed(seeing: Served, pictures: str) -> None:
    allowed = LocalServer(seeing.worker, ServerConfig(port=0, api_key=KEY, fetch_images=True))
    allowed.start()
    try:
        client = Served(seeing.worker, allowed)
        by_address = chat(client, ask(f"{pictures}/cat.png"))
        inline = chat(client, ask(data_url(png((200, 10, 10)))))
        assert by_address.choices[0].message.content == inline.choices[0].message.content  # the same picture
        for path, said in (("/page.html", "is not an image"), ("/missing.png", "answered 404")):
            with pytest.raises(openai.BadRequestError) as refused:
                chat(client, ask(f"{pictures}{path}"))
            assert said in refused.value.message and "image_url.url" in refused.value.message
    finally:
        allowed.stop()
