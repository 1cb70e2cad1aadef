"""Add up the junit XML reports of every tox env: ``python .ci/summarize_reports.py DIR``.

Prints one line per env and a closing ``total: N passed, N failed, N skipped``
line; exits non-zero when a report holds a failure or an error, or when
there is no report or no test at all.
"""
from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def counts(path: Path) -> "tuple[int, int, int]":
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    tests = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    return tests - failed - skipped, failed, skipped


def main() -> int:
    directory = Path(sys.argv[1] if len(sys.argv) > 1 else ".cache/ci-reports")
    reports = sorted(directory.glob("*.xml"))
    total = [0, 0, 0]
    for report in reports:
        passed, failed, skipped = counts(report)
        print(f"  {report.stem:<18} {passed:5d} passed, {failed} failed, {skipped} skipped")
        total = [total[0] + passed, total[1] + failed, total[2] + skipped]
    print(f"total: {total[0]} passed, {total[1]} failed, {total[2]} skipped")
    return 1 if not reports or total[1] or not total[0] else 0


if __name__ == "__main__":
    sys.exit(main())
