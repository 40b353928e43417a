"""S16: semgrep with our own vendored rules, detect-secrets, and a CycloneDX SBOM.

The scanners live in their own virtualenv (.venv/tools/sast, from tests/security/sast.lock,
hash-pinned; `make tools`), so they are not part of what a clinic server runs nor of its
SBOM. The semgrep rules are vendored in tests/security/semgrep: the scan never fetches a
registry ruleset (no network here, and a ruleset that changes under us is no baseline).
Each rule has a fixture of what it must catch and what it must leave alone, run with
`semgrep --test`: that is the rules' error-injection suite."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = Path(sys.executable).parent.parent / "tools" / "sast" / "bin"
RULES = ROOT / "tests" / "security" / "semgrep"
BASELINE = ROOT / "tests" / "security" / "secrets.baseline"
# The hash pins (lock files, the model manifest) are sha256 digests, not secrets.
SECRETS_EXCLUDE = r"(\.lock$|^models/manifest\.yaml$|^tests/security/secrets\.baseline$)"


def _tool(name: str, *args: str, cwd: Path = ROOT, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{TOOLS}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8",
           "SEMGREP_ENABLE_VERSION_CHECK": "0", "SEMGREP_SEND_METRICS": "off"}
    return subprocess.run([str(TOOLS / name), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _semgrep(*args: str) -> subprocess.CompletedProcess[str]:
    return _tool("semgrep", *args, "--metrics", "off", "--disable-version-check")


def test_every_vendored_rule_catches_its_fixture_and_spares_the_ok_lines() -> None:
    out = _semgrep("--test", "--json", str(RULES))
    report = json.loads(out.stdout)
    results = report["config_with_errors"] + [r for r in report["results"].values() if not r.get("passed", True)]
    checked = {rule for r in report["results"].values() for rule in r.get("checks", {})}
    print(f"semgrep --test: {len(checked)} rules checked against their fixtures")
    assert results == [], out.stdout[-4000:]
    assert len(checked) >= 10  # every rule file ran: the suite is not empty


def test_semgrep_finds_nothing_in_scribe_or_its_templates() -> None:
    out = _semgrep("scan", "--config", str(RULES), "--json", "--no-git-ignore", "scribe", "web/templates")
    report = json.loads(out.stdout)
    findings = [f"{r['check_id'].rsplit('.', 1)[-1]} {r['path']}:{r['start']['line']}" for r in report["results"]]
    scanned = report["paths"]["scanned"]
    print(f"semgrep: {len(scanned)} files scanned, {len(findings)} findings, {len(report['errors'])} errors")
    assert report["errors"] == []
    assert findings == []
    assert len([p for p in scanned if p.endswith(".py")]) > 80  # it read the code
    assert any(p.endswith(".html") for p in scanned)  # and the templates


def test_a_rule_added_to_scribe_itself_is_caught(tmp_path: Path) -> None:
    """The scan finds a planted violation in a copy of a real module: the path filters
    (egress.py, migrations) do not exempt the rest of the tree."""
    target = tmp_path / "scribe" / "services"
    target.mkdir(parents=True)
    source = (ROOT / "scribe" / "services" / "jobs.py").read_text()
    (target / "jobs.py").write_text(source + "\nimport urllib.request\n\n\ndef leak(x):\n"
                                    "    log.info(f'{x.text}')\n    return session.execute(text(f'SELECT {x}'))\n")
    out = _semgrep("scan", "--config", str(RULES), "--json", "--no-git-ignore", str(tmp_path / "scribe"))
    caught = sorted({r["check_id"].rsplit(".", 1)[-1] for r in json.loads(out.stdout)["results"]})
    assert caught == ["scribe-clinical-text-in-logs", "scribe-network-outside-egress", "scribe-sql-built-from-strings"]


def _secrets_scan(cwd: Path, *paths: str) -> dict[str, list[dict[str, object]]]:
    out = _tool("detect-secrets", "scan", "--exclude-files", SECRETS_EXCLUDE, *paths, cwd=cwd)
    assert out.returncode == 0, out.stderr[-2000:]
    results: dict[str, list[dict[str, object]]] = json.loads(out.stdout)["results"]
    return results


def test_detect_secrets_finds_nothing_new_in_the_repository() -> None:
    """Every hit in the tracked files is in the reviewed baseline (each with is_secret false:
    the tests' fixed demo passwords, the hash pins); anything else is a new secret."""
    found = _secrets_scan(ROOT)
    baseline = json.loads(BASELINE.read_text())["results"]
    reviewed = {(f, r["hashed_secret"]) for f, rows in baseline.items() for r in rows if r.get("is_secret") is False}
    new = sorted(f"{f}:{r['line_number']} {r['type']}" for f, rows in found.items() for r in rows
                 if (f, r["hashed_secret"]) not in reviewed)
    print(f"detect-secrets: {sum(map(len, found.values()))} hits, all reviewed; {len(new)} new")
    assert new == []


def test_detect_secrets_catches_a_planted_key(tmp_path: Path) -> None:
    """The canary: the scan is not blind (a baseline that hides everything would pass above)."""
    key = "AKIA" + "QX7RDM4K2B9ZLP3W"
    (tmp_path / "settings.py").write_text(f'aws_access_key_id = "{key}"\n'
                                          'DATABASE_URL = "postgresql://scribe:Tr0ub4dorXq9@db.clinic.example/scribe"\n'
                                          "-----BEGIN RSA PRIVATE KEY-----\n")
    found = _secrets_scan(tmp_path, "settings.py")
    types = {r["type"] for r in found.get("settings.py", [])}
    assert {"AWS Access Key", "Basic Auth Credentials", "Private Key"} <= types


def _lock_names() -> set[str]:
    from packaging.utils import canonicalize_name

    text = (ROOT / "requirements.lock").read_text()
    return {canonicalize_name(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9_.-]+)==", text, re.M)}


def test_the_sbom_lists_every_locked_package(tmp_path: Path) -> None:
    from packaging.utils import canonicalize_name

    out_file = tmp_path / "sbom.cdx.json"
    out = _tool("cyclonedx-py", "environment", "--of", "JSON", "-o", str(out_file), sys.executable)
    assert out.returncode == 0, out.stderr[-2000:]
    sbom = json.loads(out_file.read_text())
    assert sbom["bomFormat"] == "CycloneDX"
    components = {canonicalize_name(c["name"]): c for c in sbom["components"]}
    locked = _lock_names()
    print(f"SBOM: {len(components)} components; {len(locked)} locked packages")
    assert sorted(locked - set(components)) == []
    assert all(c.get("purl", "").startswith("pkg:pypi/") for n, c in components.items() if n != "scribe")
    # the scanners' own environment is not in it
    assert "semgrep" not in components and "wapiti3" not in components


def test_every_nosemgrep_names_its_rule_and_says_why() -> None:
    bare = []
    for path in [*(ROOT / "scribe").rglob("*.py"), *(ROOT / "web").rglob("*.html")]:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if "nosemgrep" in line and not re.search(r"nosemgrep: scribe-[a-z-]+ - \w", line):
                bare.append(f"{path.relative_to(ROOT)}:{n}")
    assert bare == []
