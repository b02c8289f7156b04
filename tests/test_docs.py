"""The docs stand on their own: every relative link in README.md and docs/ resolves, anchors included,
and no page cites a spec section that is not in the repository."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").rglob("*.md"),
                ROOT / "policies" / "README.md"])
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces to hyphens."""
    out: set[str] = set()
    in_code = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not line.startswith("#"):
            continue
        title = line.lstrip("#").strip().lower()
        slug = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
        base, n = slug, 1
        while slug in out:
            slug, n = f"{base}-{n}", n + 1
        out.add(slug)
    return out


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return LINK.findall(text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path):
    broken = []
    for target in _links(page):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked (CI has no network)
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading with anchor #{anchor}")
    assert [] == broken


def test_the_pages_checked_exist_and_link_somewhere():
    assert all(p.exists() for p in PAGES)
    assert sum(len(_links(p)) for p in PAGES) >= 40


def test_spec_citations_resolve_inside_the_repository():
    """Issue 16 item 9: a page that cites "spec" points into docs/spec, which is in the repository."""
    assert (ROOT / "docs" / "spec" / "language.md").exists() and (ROOT / "docs" / "spec" / "api.md").exists()
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert "spec v1" not in text.lower() or page.name == "CHANGELOG.md", page
        assert "../shared" not in text, page
