"""POST /v1/inspect, results, overlays and every refused request (status + named problem)."""

from __future__ import annotations

import io
import math
import struct
import zlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from scratchdet.overlay import KEPT
from scratchdet.service.config import ServiceSettings
from service.helpers import MakeClient, photo_bytes, wait_ready


def png_with_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` but holds almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    )


def upload(client: TestClient, data: bytes, name: str = "part.jpg", kind: str = "image/jpeg",
           **form: str):
    return client.post("/v1/inspect", files={"photo": (name, data, kind)}, data=form)


def test_inspect_returns_boxes_in_original_pixels(client: TestClient, settings) -> None:
    response = upload(client, photo_bytes(1280, 960), threshold="0.3")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["width"], body["height"]) == (1280, 960)
    assert body["threshold"] == 0.3
    assert body["model_id"] == "tiny-random-fasterrcnn-mbv3-seed0"
    assert body["num_boxes"] == len(body["boxes"]) == len(body["scores"]) > 0
    assert all(s >= 0.3 for s in body["scores"])
    assert body["verdict"] == "fail"
    for x1, y1, x2, y2 in body["boxes"]:
        assert 0 <= x1 <= x2 <= 1280 and 0 <= y1 <= y2 <= 960
    # The detector ran on a 320-px copy: boxes reaching past 320 px were mapped back.
    assert max(b[2] for b in body["boxes"]) > 320
    for key in ("decode_ms", "model_ms", "inspect_ms", "queue_ms", "total_ms"):
        assert body["timings"][key] >= 0
    stored = list(settings.storage_dir.iterdir())
    assert [p.name for p in stored] == [f"{body['id']}.jpg"]
    assert stored[0].read_bytes() == photo_bytes(1280, 960)
    assert client.get(f"/v1/inspections/{body['id']}").json() == body


def test_threshold_decides_the_verdict(client: TestClient) -> None:
    # The random detector scores every box about 0.502: above 0.5 nothing is kept.
    strict = upload(client, photo_bytes(), threshold="0.9").json()
    assert (strict["verdict"], strict["num_boxes"], strict["threshold"]) == ("pass", 0, 0.9)
    default = upload(client, photo_bytes()).json()  # the settings' default, 0.0
    assert (default["verdict"], default["threshold"]) == ("fail", 0.0)


def test_png_upload_is_kept_as_png(client: TestClient, settings) -> None:
    body = upload(client, photo_bytes(fmt="PNG"), name="part.png", kind="image/png").json()
    assert (settings.storage_dir / f"{body['id']}.png").is_file()


def test_untyped_upload_is_sniffed(client: TestClient, settings) -> None:
    """No part content type, or application/octet-stream: JPEG and PNG are recognised."""
    untyped = client.post("/v1/inspect", files={"photo": ("a", photo_bytes(fmt="PNG"))})
    assert untyped.status_code == 200, untyped.text
    assert (settings.storage_dir / f"{untyped.json()['id']}.png").is_file()
    octets = upload(client, photo_bytes(), name="b", kind="application/octet-stream")
    assert octets.status_code == 200, octets.text
    assert (settings.storage_dir / f"{octets.json()['id']}.jpg").is_file()


def test_real_sample_photo(client: TestClient, sample: Path) -> None:
    photo = sorted((sample / "val").glob("*.JPG"))[0]
    response = upload(client, photo.read_bytes(), name=photo.name)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["width"], body["height"]) == (4608, 3072)
    assert max(b[2] for b in body["boxes"]) <= 4608
    assert max(b[3] for b in body["boxes"]) <= 3072
    overlay = client.get(body["overlay_url"], params={"max_side": 1152})
    assert Image.open(io.BytesIO(overlay.content)).size == (1152, 768)


BAD_UPLOADS = [
    # (photo bytes, file name, part content type, form, status, error code, words in detail)
    (b"hello, not a photo", "notes.jpg", "image/jpeg", {}, 422, "not_an_image", "notes.jpg"),
    (photo_bytes()[:2500], "cut.jpg", "image/jpeg", {}, 422, "corrupt_image", "truncated"),
    (b"", "empty.jpg", "image/jpeg", {}, 422, "empty_photo", "0 bytes"),
    (photo_bytes(fmt="PNG"), "p.png", "image/jpeg", {}, 422, "not_an_image", "not a JPEG"),
    (b"GIF89a....", "a.bin", "application/octet-stream", {}, 422, "not_an_image",
     "not a JPEG or PNG image"),
    (b"text", "a.txt", "text/plain", {}, 415, "unsupported_media_type", "text/plain"),
    (photo_bytes(), "a.gif", "image/gif", {}, 415, "unsupported_media_type", "image/gif"),
    (photo_bytes(), "a.jpg", "image/jpeg", {"threshold": "abc"}, 422, "bad_threshold",
     "not a number"),
    (photo_bytes(), "a.jpg", "image/jpeg", {"threshold": "1.5"}, 422, "bad_threshold",
     "outside [0, 1]"),
    (photo_bytes(), "a.jpg", "image/jpeg", {"threshold": "-0.1"}, 422, "bad_threshold",
     "outside [0, 1]"),
    (photo_bytes(), "a.jpg", "image/jpeg", {"threshold": "nan"}, 422, "bad_threshold",
     "outside [0, 1]"),
    (png_with_header(5000, 5000), "big.png", "image/png", {}, 413, "too_many_pixels",
     "5000x5000 = 25000000 pixels; the limit is 20000000"),
    (png_with_header(12000, 12000), "bomb.png", "image/png", {}, 413, "too_many_pixels",
     "decompression bomb"),
    (png_with_header(100000, 100000), "bomb.png", "image/png", {}, 413, "too_many_pixels",
     "decompression bomb"),
]


@pytest.mark.parametrize(
    ("data", "name", "kind", "form", "status", "code", "words"), BAD_UPLOADS,
    ids=[f"{case[5]}-{case[1]}-{case[3]}" for case in BAD_UPLOADS],
)
def test_bad_upload_is_refused_with_a_named_problem(
    client: TestClient, settings, data: bytes, name: str, kind: str, form: dict[str, str],
    status: int, code: str, words: str,
) -> None:
    response = upload(client, data, name=name, kind=kind, **form)
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    assert words in response.json()["detail"]
    assert client.get("/v1/inspections").json()["total"] == 0
    assert list(settings.storage_dir.iterdir()) == []


def test_refused_request_bodies(client: TestClient) -> None:
    empty = client.post("/v1/inspect")
    assert (empty.status_code, empty.json()["error"]) == (415, "unsupported_media_type")
    assert "multipart/form-data" in empty.json()["detail"]
    as_json = client.post("/v1/inspect", json={"photo": "x"})
    assert as_json.status_code == 415 and "application/json" in as_json.json()["detail"]
    no_photo = client.post("/v1/inspect", files={"other": ("a.jpg", b"x", "image/jpeg")})
    assert (no_photo.status_code, no_photo.json()["error"]) == (422, "missing_photo")
    broken = client.post(
        "/v1/inspect", content=b"garbage",
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    )
    assert broken.status_code == 400 and "multipart" in broken.json()["detail"].lower()


def test_too_many_bytes(make_client: MakeClient) -> None:
    client = make_client(max_upload_bytes=20_000)
    wait_ready(client)
    data = photo_bytes(800, 600)  # ~ 400 kB of noise: over the whole-body limit
    declared = upload(client, data)
    assert (declared.status_code, declared.json()["error"]) == (413, "too_large")
    assert "limit is 85536 bytes" in declared.json()["detail"]

    def chunks():
        yield b"--b\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"x.jpg\"\r\n"
        yield b"Content-Type: image/jpeg\r\n\r\n"
        for _ in range(20):
            yield b"\xff" * 10_000

    streamed = client.post(
        "/v1/inspect", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert (streamed.status_code, streamed.json()["error"]) == (413, "too_large")
    assert streamed.json()["detail"] == (
        "streamed request body is too large; the limit is 85536 bytes"
    )
    near = upload(client, photo_bytes(160, 120, seed=1) + b"\0" * 25_000)  # file part > 20000
    assert (near.status_code, near.json()["error"]) == (413, "too_large")
    assert "over the 20000-byte limit" in near.json()["detail"]


def test_overlay_and_photo(client: TestClient) -> None:
    body = upload(client, photo_bytes(640, 480)).json()
    jpeg = client.get(f"/v1/inspections/{body['id']}/overlay")
    assert jpeg.headers["content-type"] == "image/jpeg"
    overlay = Image.open(io.BytesIO(jpeg.content))
    assert (overlay.format, overlay.size) == ("JPEG", (640, 480))
    png = client.get(f"/v1/inspections/{body['id']}/overlay", params={"format": "png"})
    drawn = Image.open(io.BytesIO(png.content)).convert("RGB")
    plain = Image.open(io.BytesIO(photo_bytes(640, 480))).convert("RGB")
    # the part region is the whole photo here (a model that runs on the whole photo)
    edges = [(math.floor(b[0]) - 2, round((b[1] + b[3]) / 2)) for b in body["boxes"]
             if b[0] >= 8 and b[1] >= 8]  # line 2 px wide, just outside the box
    assert edges and any(drawn.getpixel(xy) == KEPT for xy in edges)  # solid red, as the page
    assert all(plain.getpixel(xy) != KEPT for xy in edges)
    small = client.get(
        f"/v1/inspections/{body['id']}/overlay", params={"format": "png", "max_side": 320}
    )
    assert Image.open(io.BytesIO(small.content)).size == (320, 240)
    assert client.get(body["photo_url"]).content == photo_bytes(640, 480)
    bad = client.get(f"/v1/inspections/{body['id']}/overlay", params={"format": "gif"})
    assert bad.status_code == 422 and "format" in bad.json()["detail"]
    missing = client.get("/v1/inspections/nope/overlay")
    assert (missing.status_code, missing.json()["detail"]) == (
        404, "no inspection with id 'nope'"
    )


def test_health_docs_and_page(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    spec = client.get("/openapi.json").json()
    assert {"/v1/inspect", "/v1/inspections", "/v1/inspections/{inspection_id}/overlay",
            "/healthz", "/readyz"} <= set(spec["paths"])
    for path in ("/", "/docs", "/static/app.js", "/static/style.css"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "http://" not in response.text and "https://" not in response.text, path


def test_exif_rotated_photo_is_inspected_upright(client: TestClient) -> None:
    raw = Image.open(io.BytesIO(photo_bytes(400, 200)))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    raw.save(buffer, format="JPEG", exif=exif.tobytes())
    body = upload(client, buffer.getvalue()).json()
    assert (body["width"], body["height"]) == (200, 400)
    assert max(b[3] for b in body["boxes"]) > 200  # boxes in upright coordinates
    overlay = client.get(body["overlay_url"], params={"max_side": 100})
    assert Image.open(io.BytesIO(overlay.content)).size == (50, 100)


def test_default_pixel_limit_fits_the_camera(make_client: MakeClient) -> None:
    """16 MP by default: a 4608x3072 (14.2 MP) photo passes the check, 4900x3300 does not."""
    limit = ServiceSettings().max_pixels
    assert limit == 16_000_000
    client = make_client(max_pixels=limit)
    wait_ready(client)
    camera = upload(client, png_with_header(4608, 3072), name="cam.png", kind="image/png")
    assert camera.json()["error"] == "corrupt_image"  # past the pixel check: only its data fail
    big = upload(client, png_with_header(4900, 3300), name="big.png", kind="image/png")
    assert (big.status_code, big.json()["error"]) == (413, "too_many_pixels")
    assert "4900x3300 = 16170000 pixels; the limit is 16000000" in big.json()["detail"]


def mpo_bytes(width: int = 480, height: int = 320) -> bytes:
    """A multi-picture JPEG (as many cameras write): the photo, then a second frame."""
    first = Image.open(io.BytesIO(photo_bytes(width, height)))
    second = Image.new("RGB", (width // 4, height // 4), (0, 255, 0))
    buffer = io.BytesIO()
    first.save(buffer, "MPO", save_all=True, append_images=[second])
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["image/jpeg", "application/octet-stream"])
def test_mpo_is_inspected_as_a_jpeg(client: TestClient, settings, kind: str) -> None:
    data = mpo_bytes()
    assert Image.open(io.BytesIO(data)).format == "MPO"
    response = upload(client, data, name="camera.jpg", kind=kind)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["width"], body["height"]) == (480, 320)  # the first frame, not the 120x80 one
    stored = settings.storage_dir / f"{body['id']}.jpg"
    assert stored.read_bytes() == data  # kept as uploaded
    overlay = client.get(body["overlay_url"], params={"max_side": 240})
    assert Image.open(io.BytesIO(overlay.content)).size == (240, 160)
