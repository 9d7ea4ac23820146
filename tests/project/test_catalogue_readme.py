import re
from pathlib import Path

CONTRACT = Path(__file__).resolve().parent.parent / "contract"


def test_the_readme_lists_exactly_the_cases_the_suite_has():
    in_code = set()
    for source in CONTRACT.glob("test_*.py"):
        text = source.read_text()
        in_code |= set(re.findall(r'mark\.case\("([a-z0-9-]+)"\)', text))
        in_code |= set(re.findall(r'^\s*\("([a-z0-9-]+)", ".*", \{', text, re.M))  # HOST_TRICKS
    in_readme = set(
        re.findall(r"^\| `([a-z0-9-]+)` \|", (CONTRACT / "README.md").read_text(), re.M)
    )
    assert in_code == in_readme
    assert len(in_code) >= 30
