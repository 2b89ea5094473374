"""The page at ``/`` end to end in a real browser: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from _serve_support import running, train_bow_run

CHROMIUM = os.environ.get("TEXTCLASS_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]
SHOTS = Path(os.environ.get("TEXTCLASS_SCREENSHOTS", "/tmp"))

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[test]'")
if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)) and not shutil.which(CHROMIUM):
    pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def page_url(tmp_path_factory):
    from textclass.predict import load_predictor
    from textclass.serve import create_app, run_metrics

    run = train_bow_run(tmp_path_factory.mktemp("browser"))
    with running(create_app(load_predictor(run), metrics=run_metrics(run))) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.mark.parametrize("width, height", [(1000, 760), (375, 740)])  # a laptop and a phone
def test_type_a_sentence_and_see_the_label_and_one_bar_per_class(browser, page_url, width, height):
    page = browser.new_page(viewport={"width": width, "height": height})
    offsite = []
    page.on("request", lambda r: offsite.append(r.url) if not r.url.startswith(page_url) else None)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_url)
    sync_api.expect(page.locator("#model-name")).to_have_text("bow-logreg")
    sync_api.expect(page.locator("#metrics")).to_contain_text("accuracy")

    page.fill("#text", "The food was great and the staff were lovely")
    page.click("#submit")
    sync_api.expect(page.locator("#label")).to_have_text("1")
    bars = page.locator("#bars .bar")
    sync_api.expect(bars).to_have_count(2)
    assert bars.first.get_attribute("data-label") == "1"  # the predicted class, drawn first and marked
    assert "chosen" in bars.first.get_attribute("class")
    fill = bars.first.locator(".fill").evaluate("e => e.getBoundingClientRect().width / e.parentElement.getBoundingClientRect().width")
    shown = float(bars.first.locator(".value").inner_text().rstrip("%")) / 100
    assert shown > 0.5 and abs(fill - shown) < 0.02  # the bar is as long as the probability says
    # The words are highlighted by their contribution: "great" is the strongest, towards "1".
    sync_api.expect(page.locator("#explain")).to_be_visible()
    great = page.locator("#explained-text span", has_text="great")
    sync_api.expect(great).to_have_count(1)
    assert float(great.get_attribute("title").split(": ")[1]) > 0
    assert page.locator("#explained-text").inner_text() == "The food was great and the staff were lovely"

    page.fill("#text", "Awful, cold food and rude service")
    page.keyboard.press("Control+Enter")
    sync_api.expect(page.locator("#label")).to_have_text("0")
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing overflows sideways
    page.screenshot(path=str(SHOTS / f"textclass-serve-{width}.png"), full_page=True)
    assert offsite == [] and errors == []  # every asset from the service itself, no script error
    page.close()
