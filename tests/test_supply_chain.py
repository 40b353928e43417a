"""S16: static analysis and known vulnerabilities, on every CI run.

bandit (medium and high severity) must report nothing: each finding is either fixed or
reviewed in place with a `# nosec <test id>` and the reason on the same line or above it.
pip-audit must report no known vulnerability in the installed dependencies. Where its
vulnerability service cannot be reached (this build machine has no route to PyPI's JSON API
or OSV), every package is reported unauditable: the test says so loudly, and still fails
on any vulnerability it does see."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_bandit_reports_no_unreviewed_medium_or_high_finding() -> None:
    out = subprocess.run([str(BIN / "bandit"), "-q", "-r", "scribe", "-ll", "-f", "json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    report = json.loads(out.stdout)
    findings = [f"{r['test_id']} {r['filename']}:{r['line_number']} {r['issue_text']}" for r in report["results"]]
    assert findings == []
    assert report["metrics"]["_totals"]["loc"] > 5000  # it scanned the code


def test_every_nosec_says_why() -> None:
    bare = []
    for path in (ROOT / "scribe").rglob("*.py"):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if "# nosec" in line and not re.search(r"# nosec B\d{3} - \w", line):
                bare.append(f"{path.name}:{i + 1}")
    assert bare == []


def test_pip_audit_finds_no_known_vulnerability() -> None:
    out = subprocess.run([str(BIN / "pip-audit"), "-l", "-f", "json", "--progress-spinner", "off"], cwd=ROOT,
                         capture_output=True, text=True, timeout=900)
    report = json.loads(out.stdout)
    deps = report["dependencies"]
    vulns = [f"{d['name']} {d.get('version')}: {v['id']}" for d in deps for v in d.get("vulns", [])]
    skipped = [d["name"] for d in deps if d.get("skip_reason")]
    print(f"pip-audit: {len(deps)} packages, {len(deps) - len(skipped)} audited, {len(skipped)} unauditable, "
          f"{len(vulns)} known vulnerabilities")
    assert len(deps) > 50
    if len(skipped) == len(deps):
        # Offline (no route to PyPI's JSON API or OSV) pip-audit audits nothing: that is a skip
        # with its reason, never a pass. requirements.lock (hashes) is what to audit elsewhere.
        pytest.skip("pip-audit could not reach a vulnerability service: no package was audited here; "
                    "run `pip-audit -r requirements.lock` on a machine that can")
    assert vulns == []


def test_the_lock_file_pins_every_installed_package_with_a_hash() -> None:
    """requirements.lock (and requirements-nodeps.lock, installed without dependencies) is what an
    audit elsewhere reads: together they must be the set installed here."""
    from importlib.metadata import distributions

    from packaging.utils import canonicalize_name

    text = (ROOT / "requirements.lock").read_text() + (ROOT / "requirements-nodeps.lock").read_text()
    pinned = {}
    for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+) \\\n((?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", text, re.M):
        pinned[canonicalize_name(m.group(1))] = m.group(2)
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions()
                 if canonicalize_name(d.metadata["Name"]) not in {"scribe", "pip", "setuptools", "wheel"}}
    assert len(pinned) > 100
    assert {n: v for n, v in installed.items() if pinned.get(n) != v} == {}
