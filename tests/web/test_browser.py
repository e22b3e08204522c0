"""The page in a real headless Chromium: ?text=...&run=both fills in the same tokens and predictions
as the API, and the screenshot shows the positive-green and negative-red word colours."""
import json
import re
import shutil
import subprocess
import urllib.request
from urllib.parse import quote

import numpy as np
import pytest
from matplotlib.image import imread

TEXT = "the acting was [MASK] but the [MASK] was terrible and boring"
POSITIVE, NEGATIVE = (0x1a, 0x98, 0x50), (0xd7, 0x30, 0x27)     # --pos and --neg in minidl/web/page.html
WIDTH, HEIGHT = 1200, 900


@pytest.fixture(scope="module")
def chromium():
    """The browser's path; skips (before any model is made) where there is none."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("chromium is not installed: apt-get install chromium (make test installs it where it can)")


def api(url, path):
    with urllib.request.urlopen(f"{url}{path}?text={quote(TEXT)}", timeout=30) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def page(chromium, url, tmp_path_factory):
    """(the DOM after the page ran ?run=both, the screenshot's path); one Chromium run, a few seconds."""
    folder = tmp_path_factory.mktemp("browser")
    screenshot = folder / "page.png"
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--window-size={WIDTH},{HEIGHT}", "--virtual-time-budget=10000", f"--user-data-dir={folder / 'profile'}",
               f"--screenshot={screenshot}", "--dump-dom", f"{url}/?text={quote(TEXT)}&run=both"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=folder)
    assert done.returncode == 0 and screenshot.exists(), done.stderr[-2000:]
    return done.stdout, screenshot


def test_the_page_shows_what_the_api_answers(url, page):
    dom, _ = page
    fills, classes = api(url, "/api/fill-mask"), api(url, "/api/classify")
    assert re.findall(r'<td class="token">(.*?)</td>', dom) == [
        c["token"] for model in fills["models"] for candidates in model["masks"] for c in candidates]
    assert re.findall(r'<b class="prediction">(.*?)</b>', dom) == [m["prediction"] for m in classes["models"]]
    assert 'id="error"></div>' in dom, "no error shown"


def test_the_screenshot_shows_green_and_red_words(url, page):
    scores = np.array(api(url, "/api/classify")["models"][0]["columns"]["score"])
    assert scores.max() > 0 > scores.min(), "the test text needs words of both signs for the mlp"
    image = imread(page[1])                                        # (H, W, 3 or 4) floats in [0, 1]
    assert image.shape[:2] == (HEIGHT, WIDTH)
    rgb = np.round(image[..., :3] * 255).astype(int)
    assert (rgb < 250).any(axis=-1).mean() > 0.02, "the page is (nearly) blank"
    for colour in (POSITIVE, NEGATIVE):
        assert (np.abs(rgb - colour).max(axis=-1) <= 2).sum() > 50, f"no word underlined in {colour}"
