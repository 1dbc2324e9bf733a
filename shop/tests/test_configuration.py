"""Every variable the shop reads is listed in .env.example and in the README's table."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READ_BY_SETTINGS = re.compile(r'env\.(?:str|int|bool|float|list|path|dict)\(\s*"([A-Z][A-Z0-9_]+)"')
READ_FROM_ENVIRON = re.compile(
    r"(?:os\.environ\.get|environ\.get|env\.get|env\.setdefault|os\.environ\.setdefault)"
    r'\(\s*"([A-Z][A-Z0-9_]+)"'
)
# Read only by tests or by the benchmark's own settings, which document themselves.
NOT_CONFIGURATION = {"PROBE_WORKER"}


def _read() -> set[str]:
    names = set(READ_BY_SETTINGS.findall((ROOT / "shop" / "settings.py").read_text()))
    sources = [ROOT / "scripts" / "run.py", *ROOT.glob("shop/**/*.py"), *ROOT.glob("outbox/*.py")]
    for path in sources:
        if "tests" in path.parts:
            continue
        names |= set(READ_FROM_ENVIRON.findall(path.read_text()))
    names |= {
        name
        for role in ("ADMIN", "CUSTOMER")
        for name in (f"DEMO_{role}_USERNAME", f"DEMO_{role}_PASSWORD")
    }
    names |= {"SMOKE_PORT", "FUZZ_EXAMPLES"}
    return names - NOT_CONFIGURATION


def test_every_variable_is_in_the_env_example():
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))

    assert sorted(_read() - listed) == []


def test_every_variable_is_in_the_readmes_configuration_table():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]

    assert sorted(name for name in _read() if f"`{name}`" not in table) == []
