"""The web page in Debian's Chromium (driven by Playwright): sign in with an API key, upload a
real sample photo through the file input, then see the verdict, the boxes drawn on the canvas,
the server overlay and the history row; sign out.

Needs /usr/bin/chromium (``apt-get install -y chromium``); never ``playwright install``.
Skipped with a reason when it is absent outside CI; a failure in CI (CI=true).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from scratchdet.service.app import create_app
from scratchdet.service.config import ServiceSettings
from scratchdet.service.inspector import Inspector
from service.browser import CHROMIUM, CHROMIUM_ARGS, need_chromium, sign_in
from service.helpers import serve_in_thread

RED_PIXELS_JS = """() => {
  const c = document.getElementById('viewer');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] > 230 && d[i+1] < 70 && d[i+2] < 70) n++;
  return n;
}"""


def test_page_inspects_an_uploaded_sample_photo(
    sample: Path, tiny_inspector: Inspector, settings: ServiceSettings, api_keys: dict[str, str]
) -> None:
    need_chromium()
    from playwright.sync_api import expect, sync_playwright

    photo = sorted((sample / "val").glob("white_*.JPG"))[0]
    app = create_app(tiny_inspector, settings.model_copy(update={"default_threshold": 0.5}))
    with serve_in_thread(app) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{base}/")
        expect(page.locator("#ready")).to_have_class(re.compile(r"\bready\b"), timeout=30_000)
        sign_in(page, api_keys["operator"], "test-operator (operator)")
        assert page.locator("#threshold").is_disabled()  # operators keep the default
        cookie = next(c for c in page.context.cookies() if c["name"] == "scratchdet_session")
        assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")

        page.set_input_files("#photo-input", str(photo))
        verdict = page.locator("#verdict")
        expect(verdict).to_have_text(re.compile("^(pass|fail)$"), timeout=60_000)
        inspection_id = verdict.get_attribute("data-inspection-id")
        auth = {"Authorization": f"Bearer {api_keys['viewer']}"}
        stored = httpx.get(f"{base}/v1/inspections/{inspection_id}", headers=auth).json()
        assert stored["filename"] == photo.name
        assert (stored["width"], stored["height"]) == (4608, 3072)
        assert verdict.text_content() == stored["verdict"] == "fail"  # random scores ~0.502
        assert page.locator("#box-count").inner_text() == str(stored["num_boxes"])

        canvas = page.locator("#viewer")
        assert canvas.get_attribute("data-boxes-drawn") == str(stored["num_boxes"])
        with_boxes = page.evaluate(RED_PIXELS_JS)
        page.uncheck("#show-boxes")
        assert canvas.get_attribute("data-boxes-drawn") == "0"
        assert page.evaluate(RED_PIXELS_JS) < with_boxes / 10
        page.check("#show-boxes")

        before = page.locator("#zoom-level").inner_text()
        canvas.hover()
        page.mouse.wheel(0, -600)
        assert page.locator("#zoom-level").inner_text() != before

        page.wait_for_function(
            "() => { const i = document.getElementById('overlay');"
            " return i.complete && i.naturalWidth > 0; }"
        )
        size = page.evaluate(
            "() => [document.getElementById('overlay').naturalWidth,"
            " document.getElementById('overlay').naturalHeight]"
        )
        assert size == [800, 533]
        expect(page.locator(f"#history tr[data-id='{inspection_id}']")).to_have_count(1)
        page.click("#sign-out")
        expect(page.locator("#signin")).to_be_visible()
        expect(page.locator("#history tbody tr")).to_have_count(0)
        assert httpx.get(f"{base}/v1/inspections").status_code == 401
        assert errors == []
        browser.close()


def test_page_shows_a_refusal(tiny_inspector: Inspector, settings: ServiceSettings,
                              tmp_path: Path, api_keys: dict[str, str]) -> None:
    need_chromium()
    from playwright.sync_api import expect, sync_playwright

    fake = tmp_path / "notes.jpg"
    fake.write_text("not a photo")
    with serve_in_thread(create_app(tiny_inspector, settings)) as base, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page()
        page.goto(f"{base}/")
        page.fill("#api-key", "sdk_wrong")
        page.click("#sign-in")
        expect(page.locator("#status")).to_have_text(
            re.compile("sign-in refused: 401 unauthorized"), timeout=30_000)
        sign_in(page, api_keys["admin"], "test-admin (admin)")
        assert page.locator("#threshold").is_enabled()
        page.set_input_files("#photo-input", str(fake))
        status = page.locator("#status")
        expect(status).to_have_text(re.compile("422 not_an_image"), timeout=30_000)
        expect(status).to_have_class(re.compile("error"))
        browser.close()
