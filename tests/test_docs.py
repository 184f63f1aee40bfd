"""The documentation stays true: every ```python block of every page of the docs site (docs/**/*.md)
and of the README runs, in order per page, each page in a fresh namespace (so a later block may use
what an earlier one defined). A block that cannot run as it is (it needs the reader's own device) is
marked by the line ``<!-- sketch: not run -->`` just before it (documented on docs/index.md), which
is allowed sparingly. Citations of the docs in code (``docs: page.md#anchor``) must point at a page
and a heading that exist."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SKETCH = "<!-- sketch: not run -->"
MAX_SKETCHES = 2
PAGES = sorted(p.relative_to(ROOT).as_posix() for p in DOCS.rglob("*.md")) + ["README.md"]
_BLOCK = re.compile(
    r"^(?P<marker><!-- sketch: not run -->\n)?```python\n(?P<code>.*?)^```", re.S | re.M
)


def blocks(page: str) -> list[tuple[bool, str]]:
    """The page's python blocks as (is_sketch, code), in page order."""
    text = (ROOT / page).read_text(encoding="utf-8")
    return [(m.group("marker") is not None, m.group("code")) for m in _BLOCK.finditer(text)]


def slug(heading: str) -> str:
    """The anchor Python-Markdown's toc extension gives a heading (its default slugify), applied to
    the heading's text without inline markup."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.replace("`", "").replace("*", "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {slug(h) for h in re.findall(r"^#{1,6} (.+?)\s*$", text, flags=re.M)}


def test_pages_have_examples() -> None:
    assert sum(len(blocks(p)) for p in PAGES) >= 10
    assert len(blocks("README.md")) >= 3


def test_sketches_are_few_and_say_so() -> None:
    sketches = [(p, code) for p in PAGES for is_sketch, code in blocks(p) if is_sketch]
    assert len(sketches) <= MAX_SKETCHES
    for page, code in sketches:
        assert "sketch" in code.splitlines()[0], f"{page}: a sketch block says so in its first line"


def test_a_marker_is_always_followed_by_a_block() -> None:
    for page in PAGES:
        text = (ROOT / page).read_text(encoding="utf-8")
        markers = re.findall(rf"^{re.escape(SKETCH)}$", text, flags=re.M)
        assert len(markers) == sum(s for s, _ in blocks(page)), page


@pytest.mark.parametrize("page", [p for p in PAGES if any(not s for s, _ in blocks(p))])
def test_page_examples_run(page: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # examples name files relative to the repository (examples/…)
    namespace: dict[str, object] = {"__name__": "docs_page"}
    for index, (is_sketch, code) in enumerate(blocks(page)):
        if not is_sketch:
            exec(compile(code, f"{page}[python block {index}]", "exec"), namespace)


def test_readme_is_a_short_front_page() -> None:
    assert len((ROOT / "README.md").read_bytes()) <= 12 * 1024


_CITATION = re.compile(r"docs: ([\w./-]+\.md)(?:#([\w-]+))?")
_SOURCES = ("python", "rust", "tests", "benches", "examples", "scripts", "fuzz", ".ci", ".github")


def _source_files() -> list[Path]:
    out: list[Path] = []
    for top in _SOURCES:
        base = ROOT / top
        if base.is_dir():
            out += [
                p
                for p in base.rglob("*")
                if p.is_file()
                and p.suffix in {".py", ".pyi", ".rs", ".toml", ".md", ".yml", ""}
                and "target" not in p.parts
            ]
    return out + [ROOT / "pyproject.toml", ROOT / "Cargo.toml", ROOT / "mkdocs.yml"]


#: Pages cited by code on main whose page is written in a branch not merged yet; once the page
#: exists its anchors are checked like every other's. Remove an entry when its page has landed.
PENDING_PAGES: set[str] = set()


def test_docs_citations_in_code_resolve() -> None:
    broken = []
    for path in _source_files():
        if path == Path(__file__):
            continue
        for m in _CITATION.finditer(path.read_text(encoding="utf-8", errors="replace")):
            page = DOCS / m.group(1)
            if not page.is_file() and m.group(1) in PENDING_PAGES:
                continue
            if not page.is_file() or (m.group(2) and m.group(2) not in anchors(page)):
                broken.append(f"{path.relative_to(ROOT)}: {m.group(0)}")
    assert not broken, "\n".join(broken)


_PRIVATE = re.compile(r"DESIGN\.md|FACTS\.md|\b[Ii]ssues? \d+|\b[Ff]ield reports? \d+")


def test_nothing_cites_notes_outside_the_repository() -> None:
    """The repository stands alone: no citation of design notes kept elsewhere or of issue numbers."""
    files = _source_files() + [ROOT / "README.md", ROOT / "CHANGELOG.md"] + list(DOCS.rglob("*.md"))
    hits = []
    for path in files:
        if path == Path(__file__):
            continue
        for n, line in enumerate(
            path.read_text(encoding="utf-8", errors="replace").splitlines(), 1
        ):
            if _PRIVATE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_slug_matches_the_toc_extension() -> None:
    markdown = pytest.importorskip("markdown")
    for heading in (
        "`itb check` runs the scenario",
        "Doses are prescribed in µg (*not* mL)",
        "A/B 24 h",
    ):
        html = markdown.markdown(f"## {heading}", extensions=["toc"])
        assert f'id="{slug(heading)}"' in html, (heading, html)
