"""Request and response models of authentication (unknown fields are refused)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


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


# WebAuthn: the browser's PublicKeyCredential, as its toJSON() gives it (WebAuthn level 3), with
# byte strings in base64url. Every member the specification defines is accepted, no other.
Base64Url = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]*={0,2}$")]


class AttestationResponse(Strict):
    clientDataJSON: Base64Url = Field(max_length=4_000)
    attestationObject: Base64Url = Field(max_length=32_000)  # certificate chains included
    authenticatorData: Base64Url | None = Field(default=None, max_length=16_000)
    transports: list[str] | None = Field(default=None, max_length=10)
    publicKey: Base64Url | None = Field(default=None, max_length=4_000)
    publicKeyAlgorithm: int | None = None


class AssertionResponse(Strict):
    clientDataJSON: Base64Url = Field(max_length=4_000)
    authenticatorData: Base64Url = Field(max_length=16_000)
    signature: Base64Url = Field(max_length=2_000)
    userHandle: Base64Url | None = Field(default=None, max_length=200)


class _PublicKeyCredential(Strict):
    id: Base64Url = Field(min_length=1, max_length=1_400)  # a credential id is ≤ 1023 bytes
    rawId: Base64Url = Field(min_length=1, max_length=1_400)
    type: Literal["public-key"]
    authenticatorAttachment: Literal["platform", "cross-platform"] | None = None
    clientExtensionResults: dict[str, object] | None = Field(default=None, max_length=20)


class RegistrationCredential(_PublicKeyCredential):
    response: AttestationResponse


class AssertionCredential(_PublicKeyCredential):
    response: AssertionResponse


class WebAuthnRegistration(Strict):
    name: str = Field(min_length=1, max_length=100, description="e.g. 'YubiKey of the counter'")
    credential: RegistrationCredential = Field(description="navigator.credentials.create()")


class WebAuthnOptionsRequest(Strict):
    mfa_token: str = Field(max_length=100)


class WebAuthnAssertion(Strict):
    mfa_token: str = Field(max_length=100)
    credential: AssertionCredential = Field(description="navigator.credentials.get()")


class WebAuthnCredentialView(BaseModel):
    id: str
    name: str
    transports: list[str]
    created_at: str
    last_used_at: str | None
