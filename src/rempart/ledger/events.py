"""Access events: what the ledger records, and their canonical encoding (the Merkle leaves).

Pure. The encoding is JSON with sorted keys, no insignificant white space and UTF-8: one event
has one encoding, so a leaf hash can be recomputed from the event by anyone who holds it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum

ENCODING_VERSION = 1


class Tag(StrEnum):
    """Security events, named ``source:subject:action`` (ARCHITECTURE.md rule 6)."""

    RIGHTS_READ = "beneficiary:rights:read"
    IDENTITY_READ = "beneficiary:identity:read"
    PRIOR_AGREEMENT_CREATED = "beneficiary:prior-agreement:create"
    PRIOR_AGREEMENT_CANCELLED = "beneficiary:prior-agreement:cancel"
    PRIOR_AGREEMENT_READ = "beneficiary:prior-agreement:read"
    CLAIM_READ = "beneficiary:claim:read"
    MEMBER_FILE_READ = "beneficiary:record:read"  # an insurer's staff opened a member's file
    CALCULATION = "beneficiary:calculation:read"
    INVOICE = "beneficiary:invoice:write"
    ACCOUNT_CREATED = "account:create"
    ACCOUNT_REENROLLED = "account:enrolment:reset"
    ACCOUNT_ENROLLED = "account:enrolment:complete"
    CLIENT_REGISTERED = "professional:client:register"
    LOGIN_SUCCESS = "account:login:success"
    LOGIN_FAILURE = "account:login:failure"
    LOGOUT = "account:session:end"
    WEBAUTHN_REGISTERED = "account:webauthn:register"
    WEBAUTHN_REMOVED = "account:webauthn:remove"
    CLIENT_REVOKED = "professional:client:revoke"
    FROZEN = "guard:containment:freeze"
    UNFROZEN = "guard:containment:unfreeze"
    GUARD_ALERT = "guard:alert:raise"  # the detection found something (evidence in guard_alerts)
    BANK_DETAILS_CHANGED = "professional:bank-details:change"
    BANK_DETAILS_REQUESTED = "professional:bank-details:request"
    BANK_DETAILS_CODE_REFUSED = "professional:bank-details:code-refused"
    BANK_DETAILS_CANCELLED = "professional:bank-details:cancel"
    PAYMENT_RUN_OPENED = "platform:payment-run:open"
    PAYMENT_RUN_CLOSED = "platform:payment-run:close"
    PAYMENT_HELD = "professional:payment:hold"
    DEBIT_MANDATE_SET = "tenant:debit-mandate:set"
    KEYS_ROTATED = "platform:keys:rotate"
    TENANT_SHREDDED = "tenant:data:shred"
    # A transaction wrote business rows: the digests of its integrity-journal blocks.
    ROWS_WRITTEN = "platform:rows:write"
    NOTIFICATION_PREPARED = "incident:notification:prepare"  # identities read for letters
    NOTIFICATION_DOWNLOADED = "incident:notification:download"  # an insurer took its pack


@dataclass(frozen=True, slots=True)
class AccessEvent:
    """Who did what to whose data, from where, why, and how it ended.

    ``beneficiary`` is a keyed pseudonym (never a NIR or a name); ``tenant`` is the AMC number of
    the insurer whose member it is; ``fields`` lists what was disclosed.
    """

    at: datetime
    tag: str
    actor: str
    outcome: str
    purpose: str = ""
    organisation: str | None = None
    tenant: str | None = None
    beneficiary: str | None = None
    fields: tuple[str, ...] = field(default_factory=tuple)
    ip: str | None = None
    user_agent: str | None = None

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("an event's time must be an aware UTC datetime")

    def encode(self) -> bytes:
        # Built by hand: dataclasses.asdict deep-copies every value, a third of an append's time.
        data = {name: getattr(self, name) for name in _FIELD_NAMES}
        data["at"] = self.at.astimezone(UTC).isoformat(timespec="microseconds")
        data["fields"] = list(self.fields)
        data["v"] = ENCODING_VERSION
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def decode(cls, encoded: bytes) -> AccessEvent:
        data = json.loads(encoded)
        if data.pop("v", None) != ENCODING_VERSION:
            raise ValueError("unknown event encoding version")
        data["at"] = datetime.fromisoformat(data["at"])
        data["fields"] = tuple(data["fields"])
        return cls(**data)


_FIELD_NAMES = tuple(f.name for f in fields(AccessEvent))
