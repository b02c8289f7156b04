"""The HTML register in a real browser (headless Chromium): no sideways scrolling on a phone or a desktop.

The register page itself has no scripts. Each test puts it in an ``<iframe srcdoc>`` of the exact
width (a headless window cannot be narrower than 500 px, an iframe can), and a probe script in the
surrounding page measures the framed document after it has loaded and writes the figures into the
DOM, which ``--dump-dom`` prints. Screenshots at both widths are written next to the test's
temporary files for a human to look at.
"""

from __future__ import annotations

import datetime
import html
import json
import re
import subprocess
from pathlib import Path

import pytest
from services import CHROMIUM_FLAGS, chromium

import avgpolicy
from avgpolicy.register import render

pytestmark = pytest.mark.browser

POLICIES = Path(__file__).resolve().parent.parent / "policies"
TODAY = datetime.date(2026, 11, 25)
WIDTHS = (420, 1400)

#: measures the framed register: its width, and every element whose right edge passes the viewport
PROBE = """
<script>
window.addEventListener("load", function () {
  var frame = document.getElementById("register");
  var doc = frame.contentDocument, root = doc.documentElement, view = root.clientWidth;
  var wide = [];
  doc.querySelectorAll("body *").forEach(function (el) {
    var box = el.getBoundingClientRect();
    if (box.width > 0 && box.right > view + 0.5 && wide.length < 10) {
      wide.push(el.tagName.toLowerCase() + "." + el.className + " " + Math.round(box.right));
    }
  });
  function shown(selector) {
    return Array.prototype.filter.call(doc.querySelectorAll(selector), function (el) {
      return el.getClientRects().length > 0 && doc.defaultView.getComputedStyle(el).visibility !== "hidden";
    }).length;
  }
  var out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({
    scrollWidth: root.scrollWidth, clientWidth: view, bodyScrollWidth: doc.body.scrollWidth,
    wide: wide, matrixNames: shown(".matrix .names"), consentNotes: shown(".flows .consent"),
    title: doc.title
  });
  document.body.appendChild(out);
});
</script>
"""


def _harness(page: str, width: int) -> str:
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">'
            f'<iframe id="register" style="border:0;width:{width}px;height:1800px" '
            f'srcdoc="{html.escape(page, quote=True)}"></iframe>{PROBE}</body></html>')


def _chromium(browser: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([browser, *CHROMIUM_FLAGS, *args], capture_output=True, text=True, timeout=120,
                          check=False)


def _measure(browser: str, page: str, width: int, tmp_path: Path) -> dict:
    harness = tmp_path / f"harness-{width}.html"
    harness.write_text(_harness(page, width), encoding="utf-8")
    done = _chromium(browser, f"--window-size={max(width, 500) + 40},1800", "--virtual-time-budget=10000",
                     "--dump-dom", harness.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found is not None, f"the probe did not run (exit {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture(scope="module")
def page() -> str:
    return render(avgpolicy.load(POLICIES), "html", today=TODAY)


@pytest.mark.parametrize("width", WIDTHS)
def test_register_does_not_scroll_sideways(page: str, width: int, tmp_path: Path) -> None:
    browser = chromium()
    figures = _measure(browser, page, width, tmp_path)
    assert width == figures["clientWidth"]
    assert [] == figures["wide"]
    assert figures["clientWidth"] >= figures["scrollWidth"], figures
    assert figures["title"].startswith("Processing register")


@pytest.mark.parametrize("width", WIDTHS)
def test_matrix_field_names_and_consent_rule_are_on_the_page(page: str, width: int, tmp_path: Path) -> None:
    figures = _measure(chromium(), page, width, tmp_path)
    # every partner row shows the names of its fields (no hover needed), and every consent flow its age rule
    assert figures["matrixNames"] >= 13
    assert 3 == figures["consentNotes"]


def test_screenshots_at_phone_and_desktop_width(page: str, tmp_path: Path) -> None:
    browser = chromium()
    source = tmp_path / "register.html"
    source.write_text(page, encoding="utf-8")
    for width in WIDTHS:
        shot = tmp_path / f"register-{width}.png"
        _chromium(browser, f"--window-size={width},2400", f"--screenshot={shot}", source.as_uri())
        assert shot.exists() and shot.read_bytes().startswith(b"\x89PNG"), f"no screenshot at {width} px"
