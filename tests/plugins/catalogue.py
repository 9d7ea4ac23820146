"""The attacker's catalogue: tests marked ``@pytest.mark.case("name")``, reported by name.

tests/contract/README.md lists every name with what it proves (tests/project checks both
agree)."""

from __future__ import annotations

from collections import defaultdict

import pytest

_outcomes: dict[str, list[str]] = defaultdict(list)


def pytest_configure(config):
    config.addinivalue_line("markers", "case(name): a case of the attacker's catalogue")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    marker = item.get_closest_marker("case")
    if marker is None:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _outcomes[marker.args[0]].append(report.outcome)


def pytest_terminal_summary(terminalreporter):
    if not _outcomes:
        return
    write = terminalreporter.write_line
    held = [n for n, o in _outcomes.items() if all(x == "passed" for x in o)]
    terminalreporter.section(f"attacker's catalogue: {len(held)} of {len(_outcomes)} cases held")
    for name in sorted(_outcomes):
        outcomes = _outcomes[name]
        state = "held" if name in held else "BROKEN"
        write(f"  {name:32} {state} ({len(outcomes)} tests)")
