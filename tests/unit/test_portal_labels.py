"""The insurer's portal names, in French, every kind of event it shows about its members."""

from __future__ import annotations

from rempart.ledger.events import Tag
from rempart.portal.rendering import TAG_NAMES


def test_every_event_about_a_beneficiary_has_a_french_label() -> None:
    about_members = [tag for tag in Tag if tag.startswith("beneficiary:")]
    assert about_members
    assert [tag for tag in about_members if tag not in TAG_NAMES] == []
