"""The rights check's request and answer: the answer says only what the professional needs."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from rempart.registry.plan_format import DOMAINS


class EligibilityRequest(BaseModel):
    """What is on the card, plus the patient's birth date and rank: proof of presence."""

    model_config = ConfigDict(extra="forbid")

    amc_number: str = Field(pattern=r"^[A-Za-z0-9]{1,10}$")
    member_number: str = Field(pattern=r"^[A-Za-z0-9]{1,20}$")
    birth_date: date
    birth_rank: int = Field(ge=1, le=9)
    domain: str = Field(json_schema_extra={"enum": list[JsonValue](sorted(DOMAINS))})
    care_date: date

    @field_validator("domain")
    @classmethod
    def known_domain(cls, value: str) -> str:
        if value not in DOMAINS:
            raise ValueError("must be a care domain code: " + " ".join(sorted(DOMAINS)))
        return value


class Engagement(BaseModel):
    number: str = Field(description="The payment guarantee an invoice quotes.")
    valid_until: date = Field(description="Last day an invoice may quote it.")


class EligibilityResponse(BaseModel):
    """Open or closed, the rate, the engagement. Never a name, a NIR, a birth date, a list."""

    status: Literal["open", "closed"]
    domain: str
    rate: str | None
    prior_agreement_required: bool
    engagement: Engagement | None
