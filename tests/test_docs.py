"""The README stays short and every pointer into the documentation leads somewhere (#16).

Reference material lives in docs/, one file per topic; the README's Reference table lists every topic. Code,
messages and stack files say `README, "<topic>"`: each such topic must be one the table lists.
"""

from __future__ import annotations

import re
from pathlib import Path

from tools import engine

ROOT = engine.PROJECT_DIR
README = (ROOT / "README.md").read_text()
LINK = re.compile(r"\]\((docs/[^)#]+)(?:#([^)]+))?\)")
# `README, "Caches"`, `README, 'Stack config'`, `README "Caches"` in code, messages and stack files.
REFERENCE = re.compile(r"""README,? ["']([^"'`]+)["']""")


def github_slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings(path: Path) -> set[str]:
    return {github_slug(line.lstrip("#")) for line in path.read_text().splitlines() if line.startswith("#")}


def topics() -> list[str]:
    """The topics of the README's Reference table (indentation and markup removed)."""
    section = README.split("## Reference", 1)[1]
    return [re.sub(r"&nbsp;|`", "", row.split("|")[1]).strip() for row in section.splitlines() if row.startswith("| ") and "docs/" in row]


def test_the_readme_is_short():
    assert len(README.splitlines()) < 150


def test_every_link_into_docs_reaches_a_file_and_a_heading():
    broken = []
    for path, anchor in LINK.findall(README):
        target = ROOT / path
        if not target.is_file() or (anchor and anchor not in headings(target)):
            broken.append(f"{path}#{anchor}")
    assert broken == []
    assert len(LINK.findall(README)) > 20


def test_every_docs_page_is_linked_from_the_readme():
    linked = {path for path, _ in LINK.findall(README)}
    assert {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md")} == linked


def test_every_readme_topic_named_in_the_project_is_in_the_reference_table():
    listed = [topic.lower() for topic in topics()]
    files = [p for p in ROOT.rglob("*") if p.is_file() and p.suffix in (".py", ".yaml", ".yml", ".sh", ".md", ".go") and ".venv" not in p.parts and "build" not in p.parts]
    unknown = set()
    for path in files:
        for found in REFERENCE.findall(path.read_text(errors="replace")):
            topic = " ".join(re.sub(r"\s*#\s*", " ", found).split())  # a comment's topic may wrap onto the next line
            if topic.startswith("<") or any(entry.startswith(topic.lower()) for entry in listed):
                continue
            unknown.add(f"{path.relative_to(ROOT)}: {topic}")
    assert sorted(unknown) == []
