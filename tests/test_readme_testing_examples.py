"""The "Testing your handlers" documentation is runnable: every Python block in
it names the file it belongs to (``# file: name.py``), and each test file is
run as its own pytest session, as a user would run it.

The section is read from README.rst once it is merged there, else from the
notes file it is written in.
"""
from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from test_testing import DJANGO_CONFTEST, finish_pytest, start_pytest

TITLE = "Testing your handlers"
README = Path(__file__).resolve().parents[1] / "README.rst"
NOTES = Path("/work/notes/readme-testing.rst")
UNDERLINE = re.compile(r"([=\-~^\"'`#*+:.])\1+\s*")
FILE_LINE = re.compile(r"#\s*file:\s*([\w/]+\.py)\s*")


def extract_section(text: str, title: str) -> Optional[str]:
    """The lines of the section called ``title``, down to the next heading of
    the same or a higher level (levels follow the order underlines appear)."""
    lines = text.splitlines()
    levels: List[str] = []
    start: Optional[int] = None
    level = 0
    for i in range(len(lines) - 1):
        heading, under = lines[i].rstrip(), lines[i + 1].rstrip()
        if not heading or heading[0].isspace() or UNDERLINE.fullmatch(heading):
            continue
        if not UNDERLINE.fullmatch(under) or len(under) < len(heading):
            continue
        if under[0] not in levels:
            levels.append(under[0])
        if start is None and heading == title:
            start, level = i, levels.index(under[0])
        elif start is not None and levels.index(under[0]) <= level:
            return "\n".join(lines[start:i])
    return "\n".join(lines[start:]) if start is not None else None


def documentation() -> str:
    if README.exists():
        section = extract_section(README.read_text(encoding="utf-8"), TITLE)
        if section is not None:
            return section
    if NOTES.exists():
        return NOTES.read_text(encoding="utf-8")
    pytest.fail(f"no {TITLE!r} section in {README} and no {NOTES}")


def python_blocks(text: str) -> List[str]:
    """The bodies of ``.. code-block:: python`` (or ``.. code::``) directives."""
    lines = text.splitlines()
    blocks: List[str] = []
    i = 0
    while i < len(lines):
        if re.fullmatch(r"\s*\.\. (code-block|code|sourcecode):: python\s*", lines[i]):
            directive_indent = len(lines[i]) - len(lines[i].lstrip())
            i += 1
            while i < len(lines) and re.fullmatch(r"\s+:\w[\w-]*:.*", lines[i]):
                i += 1  # directive options
            body: List[str] = []
            while i < len(lines) and (not lines[i].strip() or
                                      len(lines[i]) - len(lines[i].lstrip()) > directive_indent):
                body.append(lines[i])
                i += 1
            blocks.append(textwrap.dedent("\n".join(body)).strip("\n"))
        else:
            i += 1
    return blocks


def example_files(text: str) -> Dict[str, str]:
    """Blocks joined per file, in document order."""
    files: Dict[str, str] = {}
    for block in python_blocks(text):
        first = block.splitlines()[0] if block else ""
        match = FILE_LINE.fullmatch(first)
        assert match, f"a Python example must start with '# file: name.py':\n{block}"
        name = match.group(1)
        files[name] = files.get(name, "") + block + "\n\n\n"
    return files


def test_section_extraction_follows_heading_levels():
    text = ("Title\n=====\n\nintro\n\nTesting your handlers\n---------------------\n\nbody\n\n"
            "Sub\n~~~\n\nmore\n\nNext\n----\n\nother\n")
    section = extract_section(text, TITLE)
    assert section.splitlines()[0] == TITLE
    assert "more" in section and "other" not in section
    assert extract_section("nothing here\n", TITLE) is None


def test_the_documented_examples_pass(tmp_path):
    text = documentation()
    files = example_files(text)
    tests = {name: body for name, body in files.items() if Path(name).name.startswith("test_")}
    assert len(tests) >= 3, sorted(files)
    runs = {}
    for name in sorted(tests):
        directory = tmp_path / Path(name).stem
        runs[name] = start_pytest(directory, {**files, "conftest.py": DJANGO_CONFTEST},
                                  str(directory / name))
    for name, proc in runs.items():
        code, output = finish_pytest(proc)
        expected = len(re.findall(r"^def test_", tests[name], re.MULTILINE))
        assert code == 0, f"{name}:\n{output}"
        assert f"{expected} passed" in output and "skipped" not in output, f"{name}:\n{output}"
