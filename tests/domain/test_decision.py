"""Access decisions carry their ground as a type; the reason stored in audit rows is the
ground's own wording, so the two cannot drift apart."""

from __future__ import annotations

import pytest

from scribe.domain.decision import Decision, Ground


@pytest.mark.parametrize("ground", list(Ground))
def test_an_allowed_ground_says_itself_in_the_reason(ground: Ground) -> None:
    d = Decision.on(ground)
    assert d and d.ground is ground and d.reason == ground.value


def test_a_detail_follows_the_grounds_wording_and_a_denial_has_no_ground() -> None:
    grant = Decision.on(Ground.BREAK_GLASS, "#12")
    assert grant.reason == "break-glass grant #12" and grant.ground is Ground.BREAK_GLASS
    denied = Decision.deny("not your client")
    assert not denied and denied.ground is None and denied.reason == "not your client"
