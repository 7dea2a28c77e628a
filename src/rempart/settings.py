"""Every REMPART_* setting, read once through ``get_settings()``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rempart.errors import ConfigurationError

# Placeholders for the operator's bank account (valid, so that development runs write valid
# files); a payment run refuses them in production.
DEFAULT_PAYER_IBAN = "FR7630003000010001234567822"
DEFAULT_CREDITOR_ID = "FR42ZZZRMP001"


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
    # Detection (docs/guard.md says why each value). What is normal for an account or a practice
    # comes from its own last 28 days; a newcomer is judged against its profession's prior until
    # it has 5 days of history.
    # Off only for load tests of the bare path (refused in production).
    guard_detection: bool = True
    guard_window_days: int = Field(default=28, ge=7, le=90)
    guard_min_history_days: int = Field(default=5, ge=1, le=28)
    # The burst: different patients in the last 10 minutes, against 1.5 × the busiest 10
    # minutes of the window, never below 6; each context signal (new network, new device, odd
    # hour, crowded network) halves it, down to 3. Beyond twice the untightened allowance the
    # account is frozen even with a fresh second factor.
    guard_burst_minutes: int = Field(default=10, ge=1, le=60)
    guard_burst_factor: float = Field(default=1.5, ge=1.0, le=10.0)
    guard_burst_floor: int = Field(default=6, ge=1, le=1000)
    guard_burst_min: int = Field(default=3, ge=1, le=100)
    guard_burst_freeze_factor: float = Field(default=2.0, ge=1.0, le=10.0)
    # The day: different patients today (Paris), against twice the busiest day of the window.
    guard_daily_factor: float = Field(default=2.0, ge=1.0, le=10.0)
    guard_daily_floor: int = Field(default=10, ge=1, le=10_000)
    # Misses: unknown cards among today's cards, judged from 10 cards on.
    guard_miss_min_cards: int = Field(default=10, ge=2, le=1000)
    guard_miss_ratio_step_up: float = Field(default=0.3, gt=0.0, le=1.0)
    guard_miss_ratio_freeze: float = Field(default=0.6, gt=0.0, le=1.0)
    # Neighbours: different member numbers of one block (the number but its last digit) today.
    guard_neighbourhood_digits: int = Field(default=1, ge=1, le=4)
    guard_neighbours_step_up: int = Field(default=3, ge=2, le=100)
    guard_neighbours_freeze: int = Field(default=5, ge=2, le=100)
    # A network from which more than 10 practices work today is crowded (a campaign's proxy).
    guard_crowd_professionals: int = Field(default=10, ge=2, le=10_000)
    # Refusals (step-up, throttle) an account may ignore in an hour before it is frozen.
    guard_refusals_freeze: int = Field(default=10, ge=1, le=1000)
    # A second factor given less than this long ago passes a step-up.
    guard_step_up_minutes: int = Field(default=10, ge=1, le=60)
    # Beyond this many networks in its window an account roams: "new network" says nothing.
    guard_max_networks: int = Field(default=50, ge=1, le=10_000)
    # Rights checks never followed by an invoice (practices that bill through Rempart): from 20
    # open checks of a day, an alert when half were not billed within 3 days.
    guard_unbilled_ratio: float = Field(default=0.5, gt=0.0, le=1.0)
    guard_unbilled_min_checks: int = Field(default=20, ge=1, le=100_000)
    guard_unbilled_lag_days: int = Field(default=3, ge=0, le=30)
    # Priors for a practice without history: (different patients on a busy day, in a busy 10
    # minutes), and the Paris hours the profession works, [start, end).
    guard_priors: dict[str, tuple[int, int]] = Field(
        default_factory=lambda: {
            "pharmacist": (300, 25),
            "gp": (40, 6),
            "specialist": (40, 6),
            "dentist": (25, 5),
            "optician": (12, 4),
            "audiologist": (8, 3),
            "laboratory": (250, 25),
            "nurse": (40, 6),
            "physiotherapist": (30, 5),
            "hospital": (400, 40),
            "transport": (40, 6),
        }
    )
    guard_hours: dict[str, tuple[int, int]] = Field(
        default_factory=lambda: {
            "pharmacist": (8, 21),
            "gp": (7, 21),
            "specialist": (8, 20),
            "dentist": (8, 20),
            "optician": (9, 20),
            "audiologist": (9, 19),
            "laboratory": (6, 20),
            "nurse": (5, 23),
            "physiotherapist": (7, 21),
            "hospital": (0, 24),
            "transport": (0, 24),
        }
    )
    # Payments. The operator's own account, which SEPA transfers debit and direct debits credit,
    # and its SEPA creditor identifier. The defaults are placeholders that a payment run
    # refuses in production.
    payer_name: str = Field(default="Rempart OTP", min_length=1, max_length=70)
    payer_iban: str = DEFAULT_PAYER_IBAN
    payer_bic: str = "SOGEFRPPXXX"
    sepa_creditor_id: str = DEFAULT_CREDITOR_ID
    payments_dir: Path | None = None  # where runs write their files; REMPART_HOME/payments
    # A new IBAN is usable this long after its out-of-band confirmation: long enough for the
    # notices sent to the practice to be read over a weekend and a fraud reported (the
    # confirmation letter may itself have been intercepted), short enough that a genuine change
    # delays at most a payment run or two.
    bank_details_cooling_hours: int = Field(default=72, ge=1, le=24 * 30)
    # How long the confirmation code sent by letter stays valid (postal delays).
    bank_details_code_days: int = Field(default=14, ge=1, le=60)

    @model_validator(mode="after")
    def _guard_tables(self) -> Settings:
        """The detection's tables and pairs of thresholds must make sense together."""
        for profession, (daily, peak) in self.guard_priors.items():
            if not 1 <= peak <= daily:
                raise ValueError(f"guard_priors.{profession}: need 1 <= peak <= daily")
        for profession, (start, end) in self.guard_hours.items():
            if not 0 <= start < end <= 24:
                raise ValueError(f"guard_hours.{profession}: need 0 <= start < end <= 24")
        if self.guard_neighbours_freeze < self.guard_neighbours_step_up:
            raise ValueError("guard_neighbours_freeze must be >= guard_neighbours_step_up")
        if self.guard_miss_ratio_freeze < self.guard_miss_ratio_step_up:
            raise ValueError("guard_miss_ratio_freeze must be >= guard_miss_ratio_step_up")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'rempart.sqlite3').resolve()}"

    @property
    def resolved_master_key_file(self) -> Path:
        return self.master_key_file or self.home / "master.key"

    @property
    def resolved_payments_dir(self) -> Path:
        return self.payments_dir or self.home / "payments"

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
        if not self.guard_detection:
            raise ConfigurationError(
                "REMPART_GUARD_DETECTION=false is for load tests: production runs the detection"
            )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read from the environment once."""
    return Settings()
