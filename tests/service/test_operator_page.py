"""The operator page in Chromium at 1400 and 800 px wide: the PASS/FAIL banner, the photo
zoomed to the part, the clickable list of detections, re-thresholding on screen, decisions
stored through the API (confirm + a drawn missed box as an operator; false alarm + saving the
threshold as an admin), local times, the details toggle, and no horizontal overflow.

Screenshots: ``<pytest tmp dir>/operator-page-<width>.png`` (and ``-drawing``).
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pytest
from PIL import Image

from scratchdet.service.app import create_app
from scratchdet.service.config import ServiceSettings
from scratchdet.service.inspector import InspectionResult, Inspector
from service.browser import CHROMIUM, CHROMIUM_ARGS, need_chromium, sign_in
from service.helpers import serve_in_thread

ZONE = "Europe/Berlin"
NO_OVERFLOW_JS = "() => document.documentElement.scrollWidth <= window.innerWidth"
ORANGE_PIXELS_JS = """() => {
  const c = document.getElementById('viewer');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4)
    if (d[i] > 230 && d[i+1] > 130 && d[i+1] < 180 && d[i+2] < 60) n++;
  return n;
}"""


class PartInspector:
    """The tiny random inspector (its scores are all about 0.502), with spread scores
    (0.93, 0.87, ... down by 0.06) and a part region in the middle of the photo (the tiny
    model runs on the whole photo and so reports the whole photo as the part)."""

    def __init__(self, inner: Inspector) -> None:
        self.inner = inner
        self.model_id = inner.model_id

    def inspect(self, image: Image.Image | np.ndarray, threshold: float) -> InspectionResult:
        result = self.inner.inspect(image, 0.0)  # every box, then scored here
        scores = [round(0.93 - 0.06 * i, 2) for i in range(len(result.boxes))]
        kept = [(b, s) for b, s in zip(result.boxes, scores, strict=True) if s >= threshold]
        below = [(b, s) for b, s in zip(result.boxes, scores, strict=True) if s < threshold]
        width, height = image.size if isinstance(image, Image.Image) else image.shape[1::-1]
        return dataclasses.replace(
            result, boxes=[b for b, _ in kept], scores=[s for _, s in kept],
            below_boxes=[b for b, _ in below], below_scores=[s for _, s in below],
            verdict="fail" if kept else "pass",
            part_box=[width * 0.25, height * 0.2, width * 0.75, height * 0.8])


def view(page) -> list[float]:
    return [float(v) for v in page.locator("#viewer").get_attribute("data-view").split(",")]


def set_screen_threshold(page, value: float) -> None:
    page.locator("#screen-threshold").evaluate(
        "(e, v) => { e.value = v; e.dispatchEvent(new Event('input', {bubbles: true})); }",
        str(value))


def check_banner_list_and_zoom(page, stored: dict) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#banner")).to_have_class(re.compile(r"\bfail\b"))
    part = stored["part_box"]
    x1, y1, x2, y2 = view(page)
    assert x1 <= part[0] and y1 <= part[1] and x2 >= part[2] and y2 >= part[3]
    assert x2 - x1 < 0.8 * stored["width"] or y2 - y1 < 0.8 * stored["height"]  # zoomed in
    canvas = page.locator("#viewer")
    drawn = int(canvas.get_attribute("data-boxes-drawn"))
    near = int(canvas.get_attribute("data-near-drawn"))
    assert drawn == stored["num_boxes"] > 0
    assert near == sum(s >= stored["threshold"] / 2 for s in stored["below_scores"]) > 0
    assert page.evaluate(ORANGE_PIXELS_JS) > 0  # the near-misses, dashed
    expect(page.locator("#detections li")).to_have_count(drawn + near)
    first = page.locator("#detections button").first
    first.click()
    assert canvas.get_attribute("data-highlight") == "0"
    bx1, by1, bx2, by2 = (float(v) for v in first.get_attribute("data-box").split(","))
    assert [bx1, by1, bx2, by2] in stored["boxes"]  # the best box is listed first
    assert first.inner_text().startswith(f"1. {max(stored['scores']):.3f}")
    zx1, zy1, zx2, zy2 = view(page)
    assert zx1 <= bx1 and zy1 <= by1 and zx2 >= bx2 and zy2 >= by2
    assert zx2 - zx1 < x2 - x1


def check_rethreshold(page, stored: dict) -> None:
    from playwright.sync_api import expect

    set_screen_threshold(page, 0.99)
    expect(page.locator("#verdict")).to_have_text("pass")
    expect(page.locator("#banner")).to_have_class(re.compile(r"\bpass\b"))
    assert page.locator("#box-count").inner_text() == "0"
    assert "stored: FAIL at 0.5" in page.locator("#banner-note").inner_text()
    set_screen_threshold(page, stored["threshold"])
    expect(page.locator("#verdict")).to_have_text("fail")


def decisions(base: str, key: str, inspection_id: str) -> list[dict]:
    url = f"{base}/v1/inspections/{inspection_id}/decisions"
    return httpx.get(url, headers={"Authorization": f"Bearer {key}"}).json()


def decide_as_operator(page, base: str, key: str, stored: dict, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    cut = 0.7  # keeps 0.93, 0.87, 0.81, 0.75
    set_screen_threshold(page, cut)
    expect(page.locator("#box-count")).to_have_text("4")
    page.click("#decide-confirm")
    expect(page.locator("#decision-log li")).to_have_count(1)
    confirmed = decisions(base, key, stored["id"])[0]
    assert (confirmed["decision"], confirmed["decided_by"]) == ("confirm", "test-operator")
    expected = [b for b, s in zip(stored["boxes"], stored["scores"], strict=True) if s >= cut]
    assert sorted(confirmed["boxes"]) == sorted(expected) and len(expected) == 4
    page.click("#decide-missed")
    box = page.locator("#viewer").bounding_box()
    page.mouse.move(box["x"] + 100, box["y"] + 80)
    page.mouse.down()
    page.mouse.move(box["x"] + 220, box["y"] + 160, steps=5)
    page.mouse.up()
    expect(page.locator("#draw-save")).to_have_text("Save 1 box(es)")
    page.screenshot(path=str(tmp_path / "operator-page-1400-drawing.png"))
    page.click("#draw-save")
    expect(page.locator("#decision-log li")).to_have_count(2)
    missed = decisions(base, key, stored["id"])[1]
    assert missed["decision"] == "missed" and len(missed["boxes"]) == 1
    mx1, my1, mx2, my2 = missed["boxes"][0]
    vx1, vy1, vx2, vy2 = view(page)
    assert vx1 <= mx1 < mx2 <= vx2 and vy1 <= my1 < my2 <= vy2
    expect(page.locator("#review-state")).to_have_text("scratched")


def decide_as_admin(page, base: str, key: str, stored: dict) -> None:
    from playwright.sync_api import expect

    page.click("#decide-false")
    expect(page.locator("#decision-log li")).to_have_count(1)
    found = decisions(base, key, stored["id"])
    assert [(d["decision"], d["decided_by"], d["boxes"]) for d in found] == [
        ("false_alarm", "test-admin", [])]
    set_screen_threshold(page, 0.7)
    page.click("#save-threshold")
    expect(page.locator("#status")).to_have_text(re.compile("service threshold set to 0.70"))
    setting = httpx.get(f"{base}/v1/threshold", headers={"Authorization": f"Bearer {key}"})
    assert setting.json()["threshold"] == 0.7


@pytest.mark.parametrize(("width", "role"), [(1400, "operator"), (800, "admin")])
def test_operator_page(width: int, role: str, sample: Path, tiny_inspector: Inspector,
                       settings: ServiceSettings, api_keys: dict[str, str],
                       tmp_path: Path) -> None:
    need_chromium()
    from playwright.sync_api import expect, sync_playwright

    photo = sorted((sample / "val").glob("white_*.JPG"))[0]
    app = create_app(PartInspector(tiny_inspector),
                     settings.model_copy(update={"default_threshold": 0.5}))
    with serve_in_thread(app) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": width, "height": 900},
                                      timezone_id=ZONE)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{base}/")
        expect(page.locator("#ready")).to_have_class(re.compile(r"\bready\b"), timeout=30_000)
        sign_in(page, api_keys[role], f"test-{role} ({role})")
        assert page.input_value("#field-operator") == f"test-{role}"
        page.fill("#field-serial", "SN-77")
        page.fill("#field-lot", "L-3")
        page.fill("#field-station", "line-2")
        page.set_input_files("#photo-input", str(photo))
        verdict = page.locator("#verdict")
        expect(verdict).to_have_text("fail", timeout=60_000)
        inspection_id = verdict.get_attribute("data-inspection-id")
        auth = {"Authorization": f"Bearer {api_keys['viewer']}"}
        stored = httpx.get(f"{base}/v1/inspections/{inspection_id}", headers=auth).json()
        assert (stored["serial"], stored["lot"], stored["station"], stored["operator"]) == (
            "SN-77", "L-3", "line-2", f"test-{role}")

        check_banner_list_and_zoom(page, stored)
        check_rethreshold(page, stored)
        expect(page.locator("#timings")).to_be_hidden()  # internal timings behind "details"
        page.click("#details summary")
        expect(page.locator("#timings")).to_contain_text("decode_ms")
        row = page.locator(f"#history tr[data-id='{inspection_id}']")
        expect(row).to_have_count(1)
        local = datetime.fromisoformat(stored["created_at"]).astimezone(ZoneInfo(ZONE))
        assert row.locator("td").first.inner_text() == local.strftime("%Y-%m-%d %H:%M:%S")
        expect(page.locator("#pass-rate tbody")).to_contain_text("0 % (0/1)")
        assert "tz=Europe%2FBerlin" in page.get_attribute("#csv-link", "href")
        assert page.evaluate(NO_OVERFLOW_JS), "the page scrolls sideways"
        page.screenshot(path=str(tmp_path / f"operator-page-{width}.png"), full_page=True)

        if role == "operator":
            decide_as_operator(page, base, api_keys[role], stored, tmp_path)
        else:
            decide_as_admin(page, base, api_keys[role], stored)
        expect(row.locator("td.review")).not_to_have_text("–")
        assert page.evaluate(NO_OVERFLOW_JS), "the page scrolls sideways"
        assert errors == []
        browser.close()
