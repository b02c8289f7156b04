"""The dashboard and the art. 15 access report in a real browser (headless Chromium), 1400 and 420 px.

As in test_register_browser.py: each page goes into an ``<iframe srcdoc>`` of the exact width (a
headless window cannot be narrower than 500 px, an iframe can) and a probe script in the
surrounding page measures the framed document after load, writing the figures into the DOM that
``--dump-dom`` prints. With ``AVG_SCREENSHOTS=DIR`` screenshots at both widths are written to DIR
for a human to look at (docs/exports.md says what they showed).
"""

from __future__ import annotations

import datetime
import html
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from avgpolicy.exports import ExportLog
from avgpolicy.exports.access import render_access
from avgpolicy.exports.dashboard import render_dashboard
from tests.exports_support import AT, FIELDS, planted_students, policy
from tests.services import CHROMIUM_FLAGS, chromium

pytestmark = pytest.mark.browser

WIDTHS = (420, 1400)

PROBE = """
<script>
window.addEventListener("load", function () {
  var frame = document.getElementById("page");
  var doc = frame.contentDocument, root = doc.documentElement, view = root.clientWidth;
  var wide = [];
  doc.querySelectorAll("body *").forEach(function (el) {
    var box = el.getBoundingClientRect();
    if (box.width > 0 && box.right > view + 0.5 && wide.length < 10) {
      wide.push(el.tagName.toLowerCase() + "." + el.className + " " + Math.round(box.right));
    }
  });
  var hidden = 0;
  doc.querySelectorAll("main *").forEach(function (el) {
    var style = doc.defaultView.getComputedStyle(el);
    if (el.textContent.trim() && (style.visibility === "hidden" || style.display === "none")) { hidden++; }
  });
  var out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({scrollWidth: root.scrollWidth, clientWidth: view,
                                    bodyScrollWidth: doc.body.scrollWidth, wide: wide, hidden: hidden,
                                    title: doc.title, cards: doc.querySelectorAll(".card").length});
  document.body.appendChild(out);
});
</script>
"""


def _harness(page: str, width: int) -> str:
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">'
            f'<iframe id="page" style="border:0;width:{width}px;height:2400px" '
            f'srcdoc="{html.escape(page, quote=True)}"></iframe>{PROBE}</body></html>')


def _chromium(browser: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([browser, *CHROMIUM_FLAGS, *args], capture_output=True, text=True, timeout=120,
                          check=False)


def _measure(browser: str, page: str, width: int, where: Path, name: str) -> dict[str, Any]:
    harness = where / f"{name}-harness-{width}.html"
    harness.write_text(_harness(page, width), encoding="utf-8")
    done = _chromium(browser, f"--window-size={max(width, 500) + 40},2400", "--virtual-time-budget=10000",
                     "--dump-dom", harness.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found is not None, f"the probe did not run (exit {done.returncode}): {done.stderr[-2000:]}"
    if os.environ.get("AVG_SCREENSHOTS"):  # a second browser run each: only when someone will look
        shot = where / f"{name}-{width}.png"
        _chromium(browser, f"--window-size={max(width, 500) + 40},2400", f"--screenshot={shot}", harness.as_uri())
        assert shot.stat().st_size > 10_000
    return json.loads(html.unescape(found.group(1)))  # type: ignore[no-any-return]


@pytest.fixture
def pages(tmp_path: Path) -> dict[str, str]:
    log = ExportLog(tmp_path / "exports.sqlite")
    pol = policy(export_log=log)
    students = planted_students(60)
    for actor, channel in (("nightly", "nightly-feed"), ("j.devries-van-den-hoogenband", "manual")):
        with pol.export("snappet", "leermiddelen", FIELDS, at=AT, actor=actor, channel=channel) as export:
            list(export.rows(students))
    pol.export("snappet", "leermiddelen", FIELDS, at=AT, actor="nightly", channel="nightly-feed").__enter__()
    return {"dashboard": render_dashboard(pol, log, today=datetime.date(2026, 3, 2)),
            "access-en": render_access(log, "L5", "html"), "access-nl": render_access(log, "L5", "html", lang="nl")}


@pytest.mark.parametrize("name", ["dashboard", "access-en", "access-nl"])
def test_pages_fit_a_phone_and_a_desktop(pages: dict[str, str], name: str, tmp_path: Path) -> None:
    browser = chromium()
    where = Path(os.environ.get("AVG_SCREENSHOTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        probe = _measure(browser, pages[name], width, where, name)
        assert probe["clientWidth"] == width
        assert probe["scrollWidth"] <= probe["clientWidth"], probe  # no sideways scrolling
        assert probe["bodyScrollWidth"] <= probe["clientWidth"], probe
        assert [] == probe["wide"]
        assert 0 == probe["hidden"]  # nothing hidden that a hover would have to reveal
        assert probe["cards"] >= 2
