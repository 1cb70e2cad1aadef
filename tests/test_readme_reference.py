"""README.rst names what the code has: every exported name in "Reference",
every logger the code writes to in "Logging", and no logger that nothing uses."""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Set

import django_socketio
import django_socketio.events
import socketio_wsgi
from test_readme_testing_examples import README, extract_section

PACKAGES = [Path(socketio_wsgi.__file__).parent, Path(django_socketio.__file__).parent]
LOG_CALLS = ("debug", "info", "warning", "error", "exception", "critical", "log")


def section(title: str) -> str:
    text = extract_section(README.read_text(encoding="utf-8"), title)
    assert text is not None, f"no {title!r} section in README.rst"
    return text


def literal_names(text: str) -> Set[str]:
    """Identifiers at the start of each ``literal`` (``send(session_id, ...)`` -> send)."""
    return {m.group(1) for m in re.finditer(r"``(?:[\w.]+\.)?(\w+)", text)}


def test_reference_lists_every_exported_name():
    documented = literal_names(section("Reference"))
    exported = set(socketio_wsgi.__all__) | set(django_socketio.__all__) | set(django_socketio.events.__all__)
    assert exported - documented == set()


def used_loggers() -> Set[str]:
    """Names of loggers that some module creates *and* writes to."""
    used = set()
    for package in PACKAGES:
        for path in package.rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            created = {}
            for node in ast.walk(tree):
                if (isinstance(node, ast.Assign) and len(node.targets) == 1
                        and isinstance(node.targets[0], ast.Name) and isinstance(node.value, ast.Call)
                        and getattr(node.value.func, "attr", None) == "getLogger"
                        and node.value.args and isinstance(node.value.args[0], ast.Constant)):
                    created[node.targets[0].id] = node.value.args[0].value
            called = {node.func.value.id for node in ast.walk(tree)
                      if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                      and node.func.attr in LOG_CALLS and isinstance(node.func.value, ast.Name)}
            used |= {name for var, name in created.items() if var in called}
            # A logger handed to something else (``server.logger = getLogger(...)``) is used.
            handed = {node.value.args[0].value for node in ast.walk(tree)
                      if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                      and getattr(node.value.func, "attr", None) == "getLogger"
                      and not isinstance(node.targets[0], ast.Name)
                      and node.value.args and isinstance(node.value.args[0], ast.Constant)}
            used |= handed
    return used


def test_logging_sections_name_exactly_the_loggers_in_use():
    core = set(re.findall(r"``(socketio_wsgi[\w.]*)``", section("Logging")))
    used = used_loggers()
    assert {n for n in used if n.startswith("socketio_wsgi")} == core
    text = README.read_text(encoding="utf-8")
    django_part = text[text.index("Django: a drop-in"):text.index("Testing your handlers\n=")]
    documented = set(re.findall(r"``(django_socketio(?:\.\w+)?)``:", django_part))
    assert {n for n in used if n.startswith("django_socketio")} == documented
