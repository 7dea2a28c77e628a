"""Every REMPART_* setting, read once through ``get_settings()``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from rempart.errors import ConfigurationError


class Settings(BaseSettings):
    """The platform's settings; each one is documented in the README."""

    model_config = SettingsConfigDict(env_prefix="REMPART_", extra="ignore", frozen=True)

    env: Literal["development", "test", "production"] = "development"
    home: Path = Path("./var")
    database_url: str | None = None
    master_key_file: Path | None = None
    redis_url: str | None = None
    # Names the log in its signed checkpoints (C2SP tlog-checkpoint origin line) and the key.
    ledger_origin: str = "rempart.local/ledger"
    # Rows per database round trip during imports: large enough to amortise the round trip,
    # small enough that one batch of ciphertexts stays a few megabytes.
    import_batch_size: int = Field(default=2000, ge=1, le=50_000)
    # argon2id cost (RFC 9106 §4, second recommended option: 64 MiB, 3 passes). Tests lower it
    # through these settings; production keeps the defaults or raises them.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65_536, ge=8)
    argon2_parallelism: int = Field(default=1, ge=1)
    enrolment_hours: int = Field(default=72, ge=1, le=24 * 30)
    # Sessions (NIST SP 800-63B AAL2): re-authenticate after 12 h whatever happens, and after
    # 30 min without activity.
    session_absolute_hours: int = Field(default=12, ge=1, le=24)
    session_idle_minutes: int = Field(default=30, ge=1, le=60)
    mfa_minutes: int = Field(default=5, ge=1, le=15)  # time to give the second factor
    # Consecutive failures (password or second factor) that lock an account, and for how long.
    # France Travail was sanctioned in 2026 for locking only after 50.
    lockout_failures: int = Field(default=10, ge=3, le=10)
    lockout_minutes: int = Field(default=30, ge=1)
    engagement_days: int = Field(default=30, ge=1, le=365)  # an engagement is quoted within this
    # The address clients reach us at: a client assertion's "aud" is this plus the token path.
    public_url: str = "http://127.0.0.1:8000"
    client_token_minutes: int = Field(default=15, ge=1, le=60)
    # WebAuthn: the relying party id (our domain) that authenticators scope their keys to, and
    # the origin browsers report for our pages. Both follow public_url unless set.
    webauthn_rp_id: str | None = None
    webauthn_origin: str | None = None
    # Distinct patients a session (account) and a professional may look up per hour and per day.
    # A busy pharmacy counter sees a patient a minute at its peak, a whole pharmacy a few hundred
    # a day; the intruders of January 2024 read thousands an hour. The guard refines these with
    # each professional's own history.
    quota_account_hour: int = Field(default=60, ge=1)
    quota_account_day: int = Field(default=300, ge=1)
    quota_professional_hour: int = Field(default=200, ge=1)
    quota_professional_day: int = Field(default=1000, ge=1)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'rempart.sqlite3').resolve()}"

    @property
    def resolved_master_key_file(self) -> Path:
        return self.master_key_file or self.home / "master.key"

    @property
    def resolved_webauthn_rp_id(self) -> str:
        return self.webauthn_rp_id or urlsplit(self.public_url).hostname or "localhost"

    @property
    def resolved_webauthn_origin(self) -> str:
        """An origin as browsers serialise it: scheme, host, and the port unless the default."""
        if self.webauthn_origin:
            return self.webauthn_origin.rstrip("/")
        url = urlsplit(self.public_url)
        host = url.hostname or "localhost"
        host = f"[{host}]" if ":" in host else host
        default_port = {"http": 80, "https": 443}.get(url.scheme)
        port = f":{url.port}" if url.port and url.port != default_port else ""
        return f"{url.scheme}://{host}{port}"

    def check_production(self) -> None:
        """Refuse the development defaults outside development (a key file beside the data)."""
        if self.env != "production":
            return
        if self.master_key_file is None:
            raise ConfigurationError(
                "REMPART_MASTER_KEY_FILE must be set in production: the default key file lives "
                "beside the database, where one stolen backup would hold both"
            )
        if self.database_url is None:
            raise ConfigurationError("REMPART_DATABASE_URL must be set in production")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read from the environment once."""
    return Settings()
