"""The deck: every quote resolves, a vanished quote fails the build, and Chromium renders every
slide with no error, no missing asset and nothing cut off."""

from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import subprocess
import sys
import threading

import pytest

from shared.env import ROOT

PRESENTATION = ROOT / "presentation"
sys.path.insert(0, str(PRESENTATION))
import build  # noqa: E402
import serve  # noqa: E402

SCREENSHOTS = {1: "title", 5: "multidb", 13: "per-transaction", 25: "throughput"}


def test_every_quote_resolves_and_every_slide_has_notes():
    deck = build.build()
    slides = deck.count("<section")
    assert 25 <= slides <= 35
    assert deck.count('<aside class="notes">') == slides
    assert "data-quote" not in deck
    assert deck.count('class="quote"') >= 15


@pytest.mark.parametrize(
    ("reference", "vanish"),
    [
        ("rls/scoping.py::_guard", lambda s: s.replace("def _guard(", "def _renamed_guard(")),
        ("shared/db/bootstrap.sql#roles", lambda s: s.replace("-- slide: roles\n", "")),
    ],
)
def test_a_quote_that_disappears_from_the_source_fails_the_build(tmp_path, reference, vanish):
    source = (PRESENTATION / "slides.html").read_text()
    assert f'data-quote="{reference}"' in source
    for quoted in {re.split(r"::|#", m.group(1))[0] for m in build.QUOTE.finditer(source)}:
        (tmp_path / quoted).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / quoted, tmp_path / quoted)
    build.build(root=tmp_path)  # as the repository is: it builds
    changed = tmp_path / re.split(r"::|#", reference)[0]
    changed.write_text(vanish(changed.read_text()))
    with pytest.raises(build.QuoteMissing, match=r"^slide \d+: "):
        build.build(root=tmp_path)


class Quiet(serve.Deck):
    """`make slides`' own handler, recording what it could not find."""

    missing: list[str]

    def log_message(self, format, *args):
        if len(args) > 1 and str(args[1]) == "404":
            self.missing.append(self.path)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail(
            "CHROMIUM IS NOT INSTALLED: the slides cannot be checked in a browser. "
            "Install it (Debian: apt-get install chromium); .ci/run does."
        )
    if not (PRESENTATION / "node_modules" / "reveal.js").is_dir():
        pytest.fail("reveal.js is not installed: run `make slides-install` (npm ci)")
    return found


def test_every_slide_renders_in_chromium(tmp_path):
    browser = chromium()
    missing: list[str] = []
    handler = functools.partial(
        type("Handler", (Quiet,), {"missing": missing}), directory=str(PRESENTATION)
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/index.html"
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,720",
    ]  # fmt: skip
    try:
        dom = subprocess.run(
            [browser, *flags, "--virtual-time-budget=30000", "--dump-dom", f"{base}?selftest"],
            capture_output=True, text=True, timeout=180,
        ).stdout  # fmt: skip
        found = re.search(r'<pre id="selftest-result">(.*?)</pre>', dom, re.S)
        assert found, "the deck never finished its self-test:\n" + dom[-2000:]
        findings = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
        assert findings["slides"] == build.build().count("<section")
        assert findings["errors"] == []
        assert findings["overflow"] == []
        shots = PRESENTATION / "screenshots"
        shots.mkdir(exist_ok=True)
        for number, name in SCREENSHOTS.items():
            path = shots / f"{number:02d}-{name}.png"
            subprocess.run(
                [browser, *flags, "--virtual-time-budget=5000", f"--screenshot={path}",
                 f"{base}#/{number - 1}"],
                capture_output=True, timeout=120,
            )  # fmt: skip
            assert path.stat().st_size > 10_000, path
    finally:
        server.shutdown()
        server.server_close()
    assert missing == []
