"""Request and response models of authentication (unknown fields are refused)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(Strict):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)  # the policy's own ceiling is lower; never truncated


class LoginResponse(BaseModel):
    mfa_token: str = Field(description="Valid five minutes, only to give the second factor.")
    methods: list[Literal["totp", "webauthn"]]


class TotpRequest(Strict):
    mfa_token: str = Field(max_length=100)
    code: str = Field(min_length=6, max_length=6, pattern=r"^[0-9]{6}$")


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_in: int = Field(description="Seconds before the session ends whatever happens.")


class SessionView(BaseModel):
    role: str
    organisation: str | None


class ClientRequest(Strict):
    name: str = Field(min_length=1, max_length=100, description="e.g. the software's name")
    public_key: str = Field(
        max_length=2000, description="Ed25519 public key: PEM, or base64 of its 32 bytes"
    )


class ClientResponse(BaseModel):
    client_id: str
    name: str
    created_at: str
    revoked: bool
