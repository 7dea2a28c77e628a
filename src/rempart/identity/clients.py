"""API clients: billing software authenticates with signed assertions (RFC 7523), never a secret.

A professional, after an MFA login, registers the software's Ed25519 public key. The software
then obtains 15-minute access tokens by signing a short JWT (EdDSA) that names itself (``iss`` =
``sub`` = its client id), our token endpoint (``aud``), expires within 60 s and carries a
``jti`` never used before. Nothing a phishing page could collect opens anything.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rempart.db import transaction, utcnow
from rempart.errors import InvalidInput, NotFound
from rempart.identity.auth import AuthenticationFailed, Client, Granted, token_hash
from rempart.identity.models import ApiClient, AuthSession, SpentAssertion
from rempart.integrity import journal
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.services import append_events
from rempart.platform import Platform
from rempart.registry.models import Professional

TOKEN_PATH = "/api/v1/auth/token"  # noqa: S105 (a path, not a secret)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_SECONDS = 60


@dataclass(frozen=True)
class ClientView:
    client_id: uuid.UUID
    name: str
    created_at: datetime
    revoked: bool


def parse_public_key(text: str) -> bytes:
    """An Ed25519 public key, as PEM (SubjectPublicKeyInfo) or as the base64 of its 32 bytes."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode())
            if not isinstance(key, Ed25519PublicKey):
                raise InvalidInput("must be an Ed25519 key", field="public_key")
            return key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=False)
    except (ValueError, binascii.Error):
        raise InvalidInput("is neither a PEM public key nor base64", field="public_key") from None
    if len(raw) != 32:
        raise InvalidInput("an Ed25519 public key is 32 bytes", field="public_key")
    return raw


def register_client(
    platform: Platform, professional_id: uuid.UUID, name: str, public_key: str, registered_by: str
) -> ClientView:
    """Register billing software for a professional; returns its client id."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidInput("must be 1 to 100 characters", field="name")
    raw = parse_public_key(public_key)
    now = utcnow()
    with transaction(platform.sessions) as session:
        professional = session.get(Professional, professional_id)
        if professional is None or professional.status != "active":
            raise NotFound("no active professional for this account")
        client = ApiClient(
            id=uuid.uuid4(),
            professional_id=professional_id,
            name=name,
            public_key=raw,
            registered_by=registered_by,
            created_at=now,
        )
        session.add(client)
        session.flush()
        append_events(
            session,
            [
                AccessEvent(
                    at=now,
                    tag=Tag.CLIENT_REGISTERED,
                    actor=registered_by,
                    outcome="registered",
                    purpose=f"client:{client.id}",
                    organisation=professional.am_number,
                )
            ],
        )
        return ClientView(client.id, name, now, False)


def professional_id_of(platform: Platform, am_number: str) -> uuid.UUID:
    with transaction(platform.sessions) as session:
        found = session.scalar(select(Professional.id).where(Professional.am_number == am_number))
        if found is None:
            raise NotFound(f"no professional with billing number {am_number}")
        return found


def list_clients(platform: Platform, professional_id: uuid.UUID) -> list[ClientView]:
    with transaction(platform.sessions) as session:
        rows = session.scalars(
            select(ApiClient)
            .where(ApiClient.professional_id == professional_id)
            .order_by(ApiClient.created_at)
        )
        return [ClientView(c.id, c.name, c.created_at, c.revoked_at is not None) for c in rows]


def revoke_client(platform: Platform, professional_id: uuid.UUID, client_id: uuid.UUID) -> None:
    """Revoke a client of this professional (another's is "not found": no oracle)."""
    now = utcnow()
    with transaction(platform.sessions) as session:
        client = session.get(ApiClient, client_id)
        if client is None or client.professional_id != professional_id:
            raise NotFound("no such client")
        client.revoked_at = client.revoked_at or now
        append_events(
            session,
            [
                AccessEvent(
                    at=now,
                    tag=Tag.CLIENT_REVOKED,
                    actor=f"professional:{professional_id}",
                    outcome="revoked",
                    purpose=f"client:{client_id}",
                )
            ],
        )
        session.execute(
            update(AuthSession)
            .where(AuthSession.client_id == client_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )


def exchange_assertion(
    platform: Platform, grant_type: str, assertion_type: str, assertion: str, client: Client
) -> Granted:
    """Verify a client assertion (RFC 7523 §3) and issue a short-lived access token."""
    if grant_type != "client_credentials" or assertion_type != ASSERTION_TYPE:
        raise AuthenticationFailed()
    now = utcnow()
    with transaction(platform.sessions) as session:
        api_client = _asserting_client(session, assertion)
        claims = _verified_claims(platform, api_client, assertion, now)
        session.execute(delete(SpentAssertion).where(SpentAssertion.expires_at < now))
        jti = hashlib.sha256(f"{api_client.id}|{claims['jti']}".encode()).digest()
        try:
            with session.begin_nested():
                session.add(
                    SpentAssertion(jti_hash=jti, expires_at=_exp(claims) + timedelta(minutes=5))
                )
        except IntegrityError:
            raise AuthenticationFailed() from None  # a replayed assertion
        token = secrets.token_urlsafe(32)
        lifetime = timedelta(minutes=platform.settings.client_token_minutes)
        session.add(
            AuthSession(
                client_id=api_client.id,
                token_hash=token_hash(platform, session, token),
                stage="active",
                mfa_failures=0,
                created_at=now,
                last_seen_at=now,
                expires_at=now + lifetime,
                ip=client.ip,
                user_agent=(client.user_agent or "")[:200] or None,
            )
        )
        append_events(
            session,
            [
                AccessEvent(
                    at=now,
                    tag=Tag.LOGIN_SUCCESS,
                    actor=f"client:{api_client.id}",
                    outcome="token",
                    purpose="client-credentials",
                    ip=client.ip,
                    user_agent=client.user_agent,
                )
            ],
        )
        return Granted(token, int(lifetime.total_seconds()))


def _asserting_client(session: Session, assertion: str) -> ApiClient:
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
        client_id = uuid.UUID(str(unverified.get("iss")))
    except (jwt.PyJWTError, ValueError):
        raise AuthenticationFailed() from None
    if header.get("alg") != "EdDSA":
        raise AuthenticationFailed()
    found = session.get(ApiClient, client_id)
    if found is None or found.revoked_at is not None:
        raise AuthenticationFailed()
    journal.check_row(session, found)  # its public key is about to be trusted
    return found


def _verified_claims(
    platform: Platform, api_client: ApiClient, assertion: str, now: datetime
) -> dict[str, object]:
    try:
        claims: dict[str, object] = jwt.decode(
            assertion,
            Ed25519PublicKey.from_public_bytes(api_client.public_key),
            algorithms=["EdDSA"],
            audience=platform.settings.public_url.rstrip("/") + TOKEN_PATH,
            issuer=str(api_client.id),
            options={"require": ["exp", "iss", "sub", "aud", "jti"]},
        )
    except jwt.PyJWTError:
        raise AuthenticationFailed() from None
    if claims["sub"] != claims["iss"] or not isinstance(claims["jti"], str) or not claims["jti"]:
        raise AuthenticationFailed()
    if _exp(claims) > now + timedelta(seconds=MAX_ASSERTION_SECONDS):
        raise AuthenticationFailed()  # a long-lived assertion is a password in disguise
    return claims


def _exp(claims: dict[str, object]) -> datetime:
    exp = claims["exp"]
    assert isinstance(exp, int | float)
    return datetime.fromtimestamp(exp, UTC)
