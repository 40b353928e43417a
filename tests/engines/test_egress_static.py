"""The egress gateway is the only code in scribe that opens an outbound connection."""

from __future__ import annotations

import re

from scribe.config import ROOT

NETWORK = re.compile(r"\b(?:urllib\.request|urlopen|http\.client|import socket|from socket|socket\.socket|"
                     r"create_connection|import requests|import httpx|import aiohttp|smtplib|ftplib)\b")


def test_only_the_gateway_opens_connections() -> None:
    offenders = []
    for path in sorted((ROOT / "scribe").rglob("*.py")):
        if path.name == "egress.py" and path.parent.name == "engines":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if NETWORK.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == [], "\n".join(offenders)
