"""The style, enforced: ruff with the rule set in pyproject.toml over scribe/, tests/ and bench/,
and mypy --strict over scribe/ and tests/ (less the test modules still on the ratchet list).
Both run from their own hash-pinned virtualenv (.venv/tools/lint, from tests/style/lint.lock;
`make tools`). Each check also runs against code written to break it, so a configuration that
silently stopped checking (a path excluded, a rule dropped, strict mode lost) fails here
instead of passing everything."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.helpers import must_search

ROOT = Path(__file__).resolve().parents[2]
TOOLS = Path(sys.executable).parent.parent / "tools" / "lint" / "bin"


def _tool(name: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{TOOLS}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    return subprocess.run([str(TOOLS / name), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900, check=False)


def test_ruff_finds_nothing_in_the_code() -> None:
    out = _tool("ruff", "check", "--no-cache", "--output-format", "concise", "scribe", "tests", "bench")
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]


def test_mypy_strict_finds_nothing_in_scribe_and_tests() -> None:
    out = _tool("mypy", "--python-executable", sys.executable, "--cache-dir", str(ROOT / ".mypy_cache"))
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert "Success: no issues found" in out.stdout
    checked = int(must_search(r"in (\d+) source files", out.stdout).group(1))
    assert checked >= 200  # scribe/ and tests/ both (124 and 80 files today)


def test_no_module_is_excused_from_strict_typing() -> None:
    """The ratchet has run out: every module of scribe/, tests/ and bench/ is checked strictly,
    and none may be excused again (an override that ignores errors, or a module-wide ignore)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    lenient = [o for o in config["tool"]["mypy"].get("overrides", []) if o.get("ignore_errors")]
    assert lenient == []
    whole_file = [p for d in ("scribe", "tests", "bench") for p in (ROOT / d).rglob("*.py")
                  if re.search(r"^# (?:mypy|type): ?ignore", p.read_text(), re.M)]
    assert whole_file == []


BROKEN = '''import os
import re
import subprocess


def run(cmd, flag=[]):
    subprocess.call(cmd, shell=True)
    try:
        return eval(cmd)
    except:
        pass
'''


def test_ruff_with_the_project_rules_catches_what_it_is_there_for() -> None:
    """Error injection: each planted fault is reported under the project's own configuration, as if
    the code were a module of scribe/ (its per-file rules apply; nothing is written there)."""
    out = subprocess.run([str(TOOLS / "ruff"), "check", "--no-cache", "--output-format", "concise",
                          "--stdin-filename", "scribe/_style_probe.py", "-"], input=BROKEN, cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=False)
    found = set(re.findall(r":\d+:\d+: ([A-Z]+\d+) ", out.stdout))
    print(sorted(found))
    # unused import, mutable default, a shell, eval, a bare except
    assert {"F401", "B006", "S602", "S307", "E722"} <= found, out.stdout


def test_mypy_strict_catches_an_untyped_function_and_a_wrong_type(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def untyped(x):\n    return x\n\n\ndef wrong() -> int:\n    return 'text'\n")
    out = _tool("mypy", "--config-file", str(ROOT / "pyproject.toml"), "--python-executable", sys.executable,
                "--no-incremental", str(probe), cwd=tmp_path)
    assert out.returncode == 1, out.stdout
    assert "[no-untyped-def]" in out.stdout and "[return-value]" in out.stdout


# A template decides nothing from a status or role spelled as a string: `x.status == "active"`,
# `kind in ("original", "revision")`. The view says it (`v.in_care`, `p.from_ai_draft`), typed
# and tested where the enum lives. The only string comparison left is the diff's own opcode.
RULE_IN_TEMPLATE = re.compile(r"""\{%-?\s*(?:el)?if\b[^%]*?(?:[=!]=\s*["']|\bin\s*\(\s*["'])""")
TEMPLATE_STRING_TESTS_ALLOWED = {"_cosign.html": 2}  # the diff's `op == "delete"`, `op == "insert"`


def _rules_in(html: str) -> int:
    return len(RULE_IN_TEMPLATE.findall(html))


def test_templates_test_no_status_or_role_strings() -> None:
    found = {p.name: n for p in sorted((ROOT / "web" / "templates").glob("*.html")) if (n := _rules_in(p.read_text()))}
    assert found == TEMPLATE_STRING_TESTS_ALLOWED


def test_the_template_check_catches_a_status_string_and_passes_a_view_field() -> None:
    planted = ['{% if c.status == "discharged" %}x{% endif %}', "{%- elif vv.state != 'returned' %}",
               '{% if p.version.kind in ("original", "revision") %}', '{% if actor.role == "admin" %}']
    assert [_rules_in(t) for t in planted] == [1, 1, 1, 1]
    clean = ['{% if v.in_care %}', '{% if v.can_start_session and not v.returned %}', '{{ st.state.value }}',
             '{% for st in consent_states %}<td>{{ states.get(st, 0) }}</td>{% endfor %}']
    assert [_rules_in(t) for t in clean] == [0, 0, 0, 0]
