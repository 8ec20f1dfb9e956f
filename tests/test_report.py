"""`pycrl score --report`: self-contained HTML pages a reviewer reads, checked as markup and in a
real headless browser (Chromium, where installed)."""

import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from pycrl.model_folder import ASSETS

SAMPLES = ASSETS / "samples"
HOSTILE = '<img src=x onerror=alert(1)> & "quotes".mp4'


class _Refs(HTMLParser):
    """Every URL a page would load or link to, and its tags."""

    def __init__(self):
        super().__init__()
        self.refs, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.refs += [v for k, v in attrs if k in ("src", "href", "srcset", "action", "data", "poster")]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    inputs = tmp_path_factory.mktemp("inputs")
    shutil.copy(SAMPLES / "astronaut_selfblend.mp4", inputs / HOSTILE)
    shutil.copy(SAMPLES / "astronaut_real.mp4", inputs / "real.mp4")
    (inputs / "broken.mp4").write_bytes(b"\x00" * 100)
    out = tmp_path_factory.mktemp("report")
    done = subprocess.run([sys.executable, "-m", "pycrl.cli", "score", str(inputs), "--frames", "6", "--faces", "all",
                           "--report", str(out), "--no-progress"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"report: {out / 'index.html'}" in done.stderr
    return out


def test_one_page_per_input_and_an_index_most_suspicious_first(report):
    pages = sorted(p.name for p in report.glob("0*.html"))
    assert len(pages) == 3 and (report / "index.html").exists()
    index = (report / "index.html").read_text()
    linked = re.findall(r'href="([^"]+)"', index)
    assert sorted(linked) == pages
    fake_page = next(p for p in pages if "onerror" in p)
    assert linked[0] == fake_page and linked[-1].endswith("broken.html")  # errors last
    assert "/" not in "".join(pages) and "<" not in "".join(pages)


def test_pages_are_self_contained_and_escape_what_inputs_say(report):
    for page in report.glob("*.html"):
        text = page.read_text()
        parser = _Refs()
        parser.feed(text)
        external = [r for r in parser.refs if not r.startswith("data:image/") and not re.fullmatch(r"0\d{4}-[\w.-]+\.html", r)]
        assert external == [], (page.name, external[:3])
        assert "script" not in parser.tags and "Content-Security-Policy" in text
        assert "<img src=x" not in text
    fake = next(report.glob("*onerror*.html")).read_text()
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quotes&quot;.mp4" in fake
    assert 'class="verdict fake"' in fake and fake.count("<polyline") == 1  # one person
    assert fake.count("data:image/jpeg;base64,") == 2 * 6  # six faces: each crop and its heatmap
    broken = next(report.glob("*broken.html")).read_text()
    assert "verdict other" in broken and "not a video" in broken


def test_chromium_renders_the_page(report, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no Chromium here (Debian: apt-get install chromium): the page is checked as markup only")
    page = next(report.glob("*onerror*.html"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,1600",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<svg" in dom.stdout and "fake 0." in dom.stdout and "Most suspicious faces" in dom.stdout
    shot = tmp_path / "page.png"
    done = subprocess.run([browser, *flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    # the heatmaps' colour map drew: strongly blue pixels (low difference) and warm ones (high)
    assert ((b > 150) & (r < 110) & (g < 150)).sum() > 20_000
    # the verdict badge (fake: dark red text on pink)
    assert ((r > 240) & (g > 210) & (g < 235) & (b > 210) & (b < 235)).sum() > 1_000
