"""The page in a real headless Chromium: ?text=...&run=both fills in the same tokens and predictions
as the API, and the screenshot shows the positive-green and negative-red word colours."""
import json
import re
import urllib.request
from urllib.parse import quote

import numpy as np
import pytest

from .conftest import browse, ink, pixels

TEXT = "the acting was [MASK] but the [MASK] was terrible and boring"
POSITIVE, NEGATIVE = (0x1a, 0x98, 0x50), (0xd7, 0x30, 0x27)     # --pos and --neg in minidl/web/page.html


def api(url, path):
    with urllib.request.urlopen(f"{url}{path}?text={quote(TEXT)}", timeout=30) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def page(chromium, url, tmp_path_factory):
    """(the DOM after the page ran ?run=both, the screenshot's path); one Chromium run, a few seconds."""
    return browse(chromium, f"{url}/?text={quote(TEXT)}&run=both", tmp_path_factory.mktemp("browser"))


def test_the_page_shows_what_the_api_answers(page, url):
    dom, _ = page
    fills, classes = api(url, "/api/fill-mask"), api(url, "/api/classify")
    assert re.findall(r'<td class="token">(.*?)</td>', dom) == [
        c["token"] for model in fills["models"] for candidates in model["masks"] for c in candidates]
    assert re.findall(r'<b class="prediction">(.*?)</b>', dom) == [m["prediction"] for m in classes["models"]]
    assert 'id="error"></div>' in dom, "no error shown"


def test_the_screenshot_shows_green_and_red_words(page, url):
    scores = np.array(api(url, "/api/classify")["models"][0]["columns"]["score"])
    assert scores.max() > 0 > scores.min(), "the test text needs words of both signs for the mlp"
    assert ink(page[1]) > 0.02, "the page is (nearly) blank"
    for colour in (POSITIVE, NEGATIVE):
        assert pixels(page[1], colour) > 50, f"no word underlined in {colour}"



def test_the_page_says_how_many_words_past_max_length_were_not_read(chromium, url, tmp_path):
    dom, _ = browse(chromium, f"{url}/?text={quote('great ' * 120)}&run=classify", tmp_path)
    assert dom.count("... and 20 more words past max_length, not read by the model") == 2   # mlp and gru
