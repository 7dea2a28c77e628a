"""WebAuthn as a second factor (W3C WebAuthn, verified by py_webauthn): a person registers an
authenticator (security key, passkey) from a recent session, then signs in with it after the
password.

A TOTP code typed into a phishing page can be relayed at once; a WebAuthn assertion cannot, since
the browser signs the origin that asked. We also require user verification (the authenticator's
PIN or biometric), a challenge bound to the session and spent by the first answer, our rp id,
and a signature counter that grows: one that does not betrays a cloned authenticator.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from webauthn import (
    base64url_to_bytes,
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    decode_credential_public_key,
    decoded_public_key_to_cryptography,
    options_to_json_dict,
    parse_client_data_json,
)
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)
from webauthn.registration.verify_registration_response import VerifiedRegistration

from rempart.crypto.keyring import PLATFORM_SCOPE
from rempart.db import transaction, utcnow
from rempart.errors import Conflict, Error, Forbidden, IntegrityFailure, InvalidInput, NotFound
from rempart.identity.auth import (
    AuthenticationFailed,
    Client,
    Granted,
    PendingLogin,
    Principal,
    open_session,
    pending_login,
    person_of,
    recent_person,
    second_factor_failed,
    stepped_up,
)
from rempart.identity.models import AuthSession, User, WebAuthnChallenge, WebAuthnCredential
from rempart.integrity import journal
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.services import append_events
from rempart.platform import Platform

RP_NAME = "Rempart"
REGISTER, LOGIN = "register", "login"
# Five minutes: the least WebAuthn recommends when the user must be verified (PIN, biometric).
CHALLENGE_LIFETIME = timedelta(minutes=5)
MAX_CREDENTIALS = 10
MAX_CREDENTIAL_ID = 1023  # bytes (WebAuthn §5.1)
# Outcomes of a refused assertion, as the ledger records them.
WRONG, CLONED, ALTERED = "wrong-second-factor", "cloned-authenticator", "altered-credential"

T = TypeVar("T")


@dataclass(frozen=True)
class CredentialView:
    id: uuid.UUID
    name: str
    transports: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None


class RegistrationFailed(InvalidInput):
    def __init__(self) -> None:
        super().__init__(
            "the authenticator's answer could not be verified: ask for new options and try again",
            field="credential",
        )


# Registration: from a person's session whose second factor is recent.


def registration_options(platform: Platform, principal: Principal) -> dict[str, Any]:
    """PublicKeyCredentialCreationOptions for this person; the challenge is kept for the session."""
    now = utcnow()
    user_id = recent_person(principal, now)
    with transaction(platform.sessions) as session:
        user = session.get(User, user_id)
        assert user is not None  # the session's owner was checked by authenticate()
        existing = _credentials(session, user_id)
        if len(existing) >= MAX_CREDENTIALS:
            raise Conflict(f"an account has at most {MAX_CREDENTIALS} authenticators")
        session.get(AuthSession, principal.session_id, with_for_update=True)  # one at a time
        cipher = platform.keyring.cipher(session, PLATFORM_SCOPE)
        email = cipher.open("users", "email", user.id.hex, user.email_enc)
        challenge = _new_challenge(session, principal.session_id, REGISTER, now)
        return creation_options(platform, user.id, email, challenge, existing)


def creation_options(
    platform: Platform,
    user_id: uuid.UUID,
    email: str,
    challenge: bytes,
    existing: Sequence[WebAuthnCredential] = (),
) -> dict[str, Any]:
    """PublicKeyCredentialCreationOptions (JSON) for a person and a challenge."""
    settings = platform.settings
    options = generate_registration_options(
        rp_id=settings.resolved_webauthn_rp_id,
        rp_name=RP_NAME,
        # The person's own address, shown by their authenticator; the handle is opaque.
        user_name=email,
        user_id=user_id.bytes,
        challenge=challenge,
        timeout=int(CHALLENGE_LIFETIME.total_seconds() * 1000),
        authenticator_selection=AuthenticatorSelectionCriteria(
            # A second factor after a password: the key need not be discoverable.
            resident_key=ResidentKeyRequirement.DISCOURAGED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[_descriptor(c) for c in existing],
    )
    return options_to_json_dict(options)


def register(
    platform: Platform, principal: Principal, credential: Mapping[str, Any], name: str
) -> CredentialView:
    """Verify the browser's answer to the registration options and keep the authenticator."""
    now = utcnow()
    user_id = recent_person(principal, now)
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidInput("must be 1 to 100 characters", field="name")
    outcome: CredentialView | Error
    with transaction(platform.sessions) as session:  # commits the spent challenge, even on failure
        session.get(AuthSession, principal.session_id, with_for_update=True)
        challenge = _spend_challenge(session, principal.session_id, REGISTER, credential, now)
        added = new_credential(platform, session, user_id, credential, challenge, name, now)
        if isinstance(added, WebAuthnCredential):
            _record(session, Tag.WEBAUTHN_REGISTERED, principal, "registered", added.id, now)
            outcome = _view(added)
        else:
            outcome = added
    if isinstance(outcome, Error):
        raise outcome
    return outcome


def new_credential(
    platform: Platform,
    session: Session,
    user_id: uuid.UUID,
    credential: Mapping[str, Any],
    challenge: bytes | None,
    name: str,
    now: datetime,
) -> WebAuthnCredential | Error:
    """The person's new authenticator, kept, if the browser's answer to ``challenge`` is valid;
    else why not."""
    verified = _verified_registration(platform, credential, challenge)
    if verified is None:
        return RegistrationFailed()
    if len(_credentials(session, user_id)) >= MAX_CREDENTIALS:
        return Conflict(f"an account has at most {MAX_CREDENTIALS} authenticators")
    if session.scalar(
        select(WebAuthnCredential.id).where(
            WebAuthnCredential.credential_id == verified.credential_id
        )
    ):
        return Conflict("this authenticator is already registered")
    row = WebAuthnCredential(
        id=uuid.uuid4(),
        user_id=user_id,
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=_transports(credential),
        name=name,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def _verified_registration(
    platform: Platform, credential: Mapping[str, Any], challenge: bytes | None
) -> VerifiedRegistration | None:
    """The new credential, if the answer is valid and its key one we can verify with."""
    if challenge is None:
        return None
    settings = platform.settings
    verified = _library(
        lambda: verify_registration_response(
            credential=dict(credential),
            expected_challenge=challenge,
            expected_rp_id=settings.resolved_webauthn_rp_id,
            expected_origin=settings.resolved_webauthn_origin,
            require_user_verification=True,
        )
    )
    if verified is None or len(verified.credential_id) > MAX_CREDENTIAL_ID:
        return None
    key = verified.credential_public_key
    usable = _library(lambda: decoded_public_key_to_cryptography(decode_credential_public_key(key)))
    return verified if usable is not None else None


def list_credentials(platform: Platform, principal: Principal) -> list[CredentialView]:
    user_id = recent_person(principal, utcnow())
    with transaction(platform.sessions) as session:
        return [_view(c) for c in _credentials(session, user_id)]


def remove(platform: Platform, principal: Principal, credential_id: uuid.UUID) -> None:
    """Remove one of the person's authenticators (another's is "not found": no oracle)."""
    now = utcnow()
    user_id = recent_person(principal, now)
    with transaction(platform.sessions) as session:
        user = session.get(User, user_id, with_for_update=True)
        assert user is not None
        row = session.get(WebAuthnCredential, credential_id)
        if row is None or row.user_id != user_id:
            raise NotFound("no such authenticator")
        if user.totp_secret_enc is None and len(_credentials(session, user_id)) == 1:
            raise Conflict("this is the account's only second factor: add another one first")
        session.delete(row)
        _record(session, Tag.WEBAUTHN_REMOVED, principal, "removed", credential_id, now)


# Login: after the password, the pending login's token stands for the person.


def login_options(platform: Platform, mfa_token: str) -> dict[str, Any]:
    """PublicKeyCredentialRequestOptions for a login waiting for its second factor."""
    now = utcnow()
    options = None
    with transaction(platform.sessions) as session:
        pending = pending_login(platform, session, mfa_token, now)
        credentials = _credentials(session, pending.user.id) if pending else []
        if pending and credentials:
            options = generate_authentication_options(
                rp_id=platform.settings.resolved_webauthn_rp_id,
                challenge=_new_challenge(session, pending.auth.id, LOGIN, now),
                timeout=int(CHALLENGE_LIFETIME.total_seconds() * 1000),
                allow_credentials=[_descriptor(c) for c in credentials],
                user_verification=UserVerificationRequirement.REQUIRED,
            )
    if options is None:
        raise AuthenticationFailed()
    return options_to_json_dict(options)


def complete_webauthn(
    platform: Platform, mfa_token: str, credential: Mapping[str, Any], client: Client
) -> Granted:
    """Exchange the login's token and a WebAuthn assertion for a session token."""
    now = utcnow()
    granted: Granted | None = None
    with transaction(platform.sessions) as session:  # failures are counted and committed
        pending = pending_login(platform, session, mfa_token, now)
        if pending is not None:
            checked = _check_assertion(platform, session, pending, credential, now)
            if isinstance(checked, str):
                second_factor_failed(platform, session, pending, now, client, outcome=checked)
            else:
                stored, count = checked
                stored.sign_count, stored.last_used_at = count, now
                granted = open_session(platform, session, pending, now, client)
    if granted is None:
        raise AuthenticationFailed()
    return granted


# Step-up: a key's answer within a session, in place of a code (sensitive changes need one).
# The challenge is the session's "login" one: a login's challenge belongs to a session still
# waiting for its second factor, a step-up's to one already open, so neither serves the other.


def step_up_options(platform: Platform, principal: Principal) -> dict[str, Any]:
    """PublicKeyCredentialRequestOptions for confirming this session with one of its keys."""
    now = utcnow()
    user_id = person_of(principal)
    with transaction(platform.sessions) as session:
        auth = session.get(AuthSession, principal.session_id, with_for_update=True)
        credentials = _credentials(session, user_id)
        if auth is None or auth.revoked_at is not None or not credentials:
            raise NotFound("no security key on this account")
        options = generate_authentication_options(
            rp_id=platform.settings.resolved_webauthn_rp_id,
            challenge=_new_challenge(session, auth.id, LOGIN, now),
            timeout=int(CHALLENGE_LIFETIME.total_seconds() * 1000),
            allow_credentials=[_descriptor(c) for c in credentials],
            user_verification=UserVerificationRequirement.REQUIRED,
        )
    return options_to_json_dict(options)


def confirm_step_up(
    platform: Platform, principal: Principal, credential: Mapping[str, Any], client: Client
) -> None:
    """A key's answer within a session: the session counts as freshly authenticated. A refused
    answer counts toward the lockout, as a wrong code does."""
    now = utcnow()
    user_id = person_of(principal)
    refused = False
    with transaction(platform.sessions) as session:
        auth = session.get(AuthSession, principal.session_id, with_for_update=True)
        user = session.get(User, user_id, with_for_update=True)
        if auth is None or user is None or auth.revoked_at is not None:
            raise Forbidden("this session has ended: sign in again")
        pending = PendingLogin(auth, user)
        checked = _check_assertion(platform, session, pending, credential, now)
        if isinstance(checked, str):
            second_factor_failed(platform, session, pending, now, client, outcome=checked)
            refused = True
        else:
            stored, count = checked
            stored.sign_count, stored.last_used_at = count, now
            stepped_up(session, auth, principal, client, now)
    if refused:
        raise InvalidInput("the security key's answer was refused", field="credential")


def _check_assertion(
    platform: Platform,
    session: Session,
    pending: PendingLogin,
    credential: Mapping[str, Any],
    now: datetime,
) -> tuple[WebAuthnCredential, int] | str:
    """The credential used and its new counter, or why the assertion is refused."""
    challenge = _spend_challenge(session, pending.auth.id, LOGIN, credential, now)
    raw_id = _library(lambda: base64url_to_bytes(credential["rawId"]))
    if challenge is None or raw_id is None:
        return WRONG
    stored = session.scalar(
        select(WebAuthnCredential).where(
            WebAuthnCredential.credential_id == raw_id,
            WebAuthnCredential.user_id == pending.user.id,  # another person's key is no use
        )
    )
    if stored is None:
        return WRONG
    try:
        journal.check_row(session, stored)
    except IntegrityFailure:
        return ALTERED  # written into the database, not registered here
    settings = platform.settings
    verified = _library(
        lambda: verify_authentication_response(
            credential=dict(credential),
            expected_challenge=challenge,
            expected_rp_id=settings.resolved_webauthn_rp_id,
            expected_origin=settings.resolved_webauthn_origin,
            credential_public_key=stored.public_key,
            # Zero turns the library's counter check off: ours below runs only once the
            # signature is known good, so that a regression means a clone, not a forgery.
            credential_current_sign_count=0,
            require_user_verification=True,
        )
    )
    if verified is None or not _same_handle(credential, stored.user_id):
        return WRONG
    count = verified.new_sign_count
    if (count or stored.sign_count) and count <= stored.sign_count:
        return CLONED
    return stored, count


# Challenges: random, hashed at rest, one per session and ceremony, spent by the first answer.


def _new_challenge(session: Session, session_id: uuid.UUID, ceremony: str, now: datetime) -> bytes:
    challenge = secrets.token_bytes(32)
    session.execute(
        delete(WebAuthnChallenge).where(
            (WebAuthnChallenge.expires_at <= now)  # abandoned ceremonies, this one's and others'
            | (
                (WebAuthnChallenge.session_id == session_id)
                & (WebAuthnChallenge.ceremony == ceremony)
            )
        )
    )
    session.add(
        WebAuthnChallenge(
            session_id=session_id,
            ceremony=ceremony,
            challenge_hash=hashlib.sha256(challenge).digest(),
            expires_at=now + CHALLENGE_LIFETIME,
        )
    )
    return challenge


def _spend_challenge(
    session: Session,
    session_id: uuid.UUID,
    ceremony: str,
    credential: Mapping[str, Any],
    now: datetime,
) -> bytes | None:
    """The challenge the answer signed, if it is the one this session holds (spent either way).

    Its client data must also not come from a frame of another site: we are never embedded.
    """
    held = session.get(WebAuthnChallenge, (session_id, ceremony), with_for_update=True)
    if held is None:
        return None
    session.delete(held)
    client_data = _library(
        lambda: parse_client_data_json(base64url_to_bytes(credential["response"]["clientDataJSON"]))
    )
    if (
        client_data is None
        or client_data.cross_origin
        or held.expires_at <= now
        or not hmac.compare_digest(
            held.challenge_hash, hashlib.sha256(client_data.challenge).digest()
        )
    ):
        return None
    return client_data.challenge


# Helpers.


def _same_handle(credential: Mapping[str, Any], user_id: uuid.UUID) -> bool:
    """The user handle, when the authenticator returns one, is the one we registered."""
    handle = credential["response"].get("userHandle")
    return not handle or _library(lambda: base64url_to_bytes(handle)) == user_id.bytes


def _library(call: Callable[[], T]) -> T | None:
    """The result of a py_webauthn call, or None when it refuses the input. It raises its own
    errors, but also ValueError, KeyError, TypeError or cbor2's on hostile input: each means
    the same, an answer that is not valid."""
    try:
        return call()
    except Exception:
        return None


def _credentials(session: Session, user_id: uuid.UUID) -> list[WebAuthnCredential]:
    return list(
        session.scalars(
            select(WebAuthnCredential)
            .where(WebAuthnCredential.user_id == user_id)
            .order_by(WebAuthnCredential.created_at, WebAuthnCredential.id)
        )
    )


def _descriptor(row: WebAuthnCredential) -> PublicKeyCredentialDescriptor:
    transports = [AuthenticatorTransport(t) for t in row.transports.split(",") if t]
    return PublicKeyCredentialDescriptor(id=row.credential_id, transports=transports or None)


def _transports(credential: Mapping[str, Any]) -> str:
    """The transports the browser reported, those the specification knows, once each."""
    known = {t.value for t in AuthenticatorTransport}
    given = credential["response"].get("transports") or []
    return ",".join(sorted({t for t in given if t in known}))


def _view(row: WebAuthnCredential) -> CredentialView:
    transports = tuple(t for t in row.transports.split(",") if t)
    return CredentialView(row.id, row.name, transports, row.created_at, row.last_used_at)


def _record(
    session: Session,
    tag: str,
    principal: Principal,
    outcome: str,
    credential_id: uuid.UUID,
    now: datetime,
) -> None:
    append_events(
        session,
        [
            AccessEvent(
                at=now,
                tag=tag,
                actor=principal.actor,
                outcome=outcome,
                purpose=f"webauthn:{credential_id}",
                organisation=principal.organisation,
            )
        ],
    )
