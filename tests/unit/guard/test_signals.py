"""The detection's rules: norms, context, every signal and its bounds, the graded responses."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rempart.dates import paris_day
from rempart.guard import signals
from rempart.guard.signals import (
    Baseline,
    Context,
    Finding,
    Measure,
    Norm,
    Prior,
    Response,
    Signal,
    Thresholds,
)

T = Thresholds()
PHARMACY = Prior(daily=300, peak=25, hours=(8, 21))
OPTICIAN = Prior(daily=12, peak=4, hours=(9, 20))
HOME, LAPTOP = "net-home", "dev-laptop"
COUNTER = Baseline(
    days_active=20,
    daily=40,
    peak=6,
    hours=frozenset(range(8, 20)),
    networks=frozenset({HOME}),
    devices=frozenset({LAPTOP}),
)
USUAL = Measure(
    burst=2, day=10, professional_day=50, cards=10, hour=10, network=HOME, device=LAPTOP
)


def norm(baseline: Baseline | None = COUNTER, prior: Prior = PHARMACY) -> Norm:
    return signals.norm_of(baseline, prior, T)


def judge(
    measure: Measure, account: Norm | None = None, *, software: bool = False, fresh: bool = False
) -> signals.Assessment:
    account = account or norm()
    practice = norm(Baseline(days_active=20, daily=200, peak=20))
    return signals.assess(measure, account, practice, T, software=software, fresh=fresh)


# --- norms -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("baseline", "person", "expected"),
    [
        # No history: the profession's prior, and nothing can be called new.
        (None, False, (300, 25, None, False)),
        # A person without history gets one counter's pace in a burst, not the practice's.
        (None, True, (300, 6, None, False)),
        # Too little history (4 days < 5): still the prior.
        (replace(COUNTER, days_active=4), False, (300, 25, None, False)),
        # Enough history: its own figures, its own networks.
        (COUNTER, False, (40, 6, frozenset({HOME}), True)),
        # An account that roams over more networks than max_networks: no "new network".
        (
            replace(COUNTER, networks=frozenset(f"n{i}" for i in range(T.max_networks + 1))),
            False,
            (40, 6, None, True),
        ),
    ],
)
def test_a_norm_comes_from_its_own_history_once_there_is_enough(
    baseline: Baseline | None, person: bool, expected: tuple[object, ...]
) -> None:
    found = signals.norm_of(baseline, PHARMACY, T, person=person)
    assert (found.daily, found.peak, found.networks, found.own) == expected


def test_the_usual_hours_are_the_professions_and_the_accounts_own() -> None:
    night_owl = replace(COUNTER, hours=frozenset({22, 23}))
    assert norm(night_owl).hours == frozenset(range(8, 21)) | {22, 23}
    assert norm(None).hours == frozenset(range(8, 21))


# --- context -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, ()),
        ({"network": "net-elsewhere"}, (Context.NEW_NETWORK,)),
        ({"device": "dev-script"}, (Context.NEW_DEVICE,)),
        ({"hour": 3}, (Context.ODD_HOUR,)),
        ({"crowd": T.crowd_professionals}, ()),  # at the bound: not yet crowded
        ({"crowd": T.crowd_professionals + 1}, (Context.CROWDED_NETWORK,)),
        (
            {"network": "x", "device": "y", "hour": 23},
            (Context.NEW_NETWORK, Context.NEW_DEVICE, Context.ODD_HOUR),
        ),
    ],
)
def test_context_signals(changes: dict[str, object], expected: tuple[Context, ...]) -> None:
    assert signals.context_of(replace(USUAL, **changes), norm(), T) == expected  # type: ignore[arg-type]


def test_without_history_no_network_or_device_is_new() -> None:
    stranger = replace(USUAL, network="anything", device="anything")
    assert signals.context_of(stranger, norm(None), T) == ()


# --- allowances ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peak", "contexts", "allowance", "tight"),
    [
        (0, 0, 6, 6),  # the floor
        (6, 0, 9, 9),  # 1.5 × the busiest burst
        (6, 1, 9, 4),  # halved by one context signal
        (6, 2, 9, 3),  # quartered, but never below burst_min
        (20, 3, 30, 3),  # three signals: an eighth (3.75 → 3)
        (20, 4, 30, 3),  # a fourth changes nothing more
        (40, 2, 60, 15),
    ],
)
def test_burst_allowance_and_its_tightening(
    peak: int, contexts: int, allowance: int, tight: int
) -> None:
    found = signals.burst_allowance(replace(norm(), peak=peak), T)
    assert found == allowance
    assert signals.tightened(found, tuple(Context)[:contexts], T) == tight


@pytest.mark.parametrize(("daily", "allowed"), [(0, 10), (4, 10), (5, 10), (6, 12), (150, 300)])
def test_daily_allowance(daily: int, allowed: int) -> None:
    assert signals.daily_allowance(daily, T) == allowed


# --- signals and responses -----------------------------------------------------------------------

# Account COUNTER: peak 6 → burst allowance 9, frozen beyond 18; daily 40 → 80. Its practice:
# daily 200 → 400.
CASES = [
    ("usual", {}, Response.ALLOW, []),
    ("burst at its bound", {"burst": 9}, Response.ALLOW, []),
    ("burst beyond", {"burst": 10}, Response.STEP_UP, [(Signal.BURST, 9, Response.STEP_UP)]),
    ("burst far beyond", {"burst": 19}, Response.FREEZE, [(Signal.BURST, 18, Response.FREEZE)]),
    (
        "burst from a new network",
        {"burst": 5, "network": "elsewhere"},
        Response.STEP_UP,
        [(Signal.BURST, 4, Response.STEP_UP)],
    ),
    (
        "burst from a script at night on a new network",
        {"burst": 4, "network": "vps", "device": "python", "hour": 3},
        Response.STEP_UP,
        [(Signal.BURST, 3, Response.STEP_UP)],
    ),
    ("day beyond", {"day": 81}, Response.STEP_UP, [(Signal.DAY, 80, Response.STEP_UP)]),
    (
        "the practice's day beyond",
        {"professional_day": 401},
        Response.STEP_UP,
        [(Signal.PROFESSIONAL_DAY, 400, Response.STEP_UP)],
    ),
    ("few cards, many misses", {"cards": 9, "misses": 9}, Response.ALLOW, []),
    ("misses below", {"cards": 20, "misses": 5}, Response.ALLOW, []),
    (
        "misses beyond",
        {"cards": 20, "misses": 6},
        Response.STEP_UP,
        [(Signal.MISSES, 0.3, Response.STEP_UP)],
    ),
    (
        "misses far beyond",
        {"cards": 20, "misses": 12},
        Response.FREEZE,
        [(Signal.MISSES, 0.6, Response.FREEZE)],
    ),
    ("two neighbours", {"neighbours": 2}, Response.ALLOW, []),
    (
        "three neighbours",
        {"neighbours": 3},
        Response.STEP_UP,
        [(Signal.NEIGHBOURS, 2, Response.STEP_UP)],
    ),
    (
        "five neighbours",
        {"neighbours": 5},
        Response.FREEZE,
        [(Signal.NEIGHBOURS, 4, Response.FREEZE)],
    ),
    ("refusals below", {"refusals": 9}, Response.ALLOW, []),
    (
        "refusals ignored",
        {"refusals": 10},
        Response.FREEZE,
        [(Signal.PERSISTENCE, 9, Response.FREEZE)],
    ),
]


@pytest.mark.parametrize(
    ("name", "changes", "response", "findings"), CASES, ids=[c[0] for c in CASES]
)
def test_each_signal_at_and_beyond_its_bound(
    name: str,
    changes: dict[str, object],
    response: Response,
    findings: list[tuple[Signal, float, Response]],
) -> None:
    found = judge(replace(USUAL, **changes))  # type: ignore[arg-type]
    assert found.response is response
    assert [(f.signal, f.threshold, f.level) for f in found.findings] == findings


@pytest.mark.parametrize(
    ("software", "fresh", "response"),
    [
        (False, False, Response.STEP_UP),  # a person with an old session signs in again
        (False, True, Response.ALLOW),  # a fresh second factor passes the step-up
        (True, False, Response.THROTTLE),  # software has no second factor: it slows down
        (True, True, Response.THROTTLE),
    ],
)
def test_a_step_up_is_passed_by_a_fresh_factor_and_is_a_throttle_for_software(
    software: bool, fresh: bool, response: Response
) -> None:
    assert judge(replace(USUAL, day=81), software=software, fresh=fresh).response is response


@pytest.mark.parametrize("software", [False, True])
@pytest.mark.parametrize("fresh", [False, True])
def test_a_freeze_is_a_freeze_whatever_the_session(software: bool, fresh: bool) -> None:
    found = judge(replace(USUAL, neighbours=5), software=software, fresh=fresh)
    assert found.response is Response.FREEZE


def test_the_worst_finding_decides() -> None:
    found = judge(replace(USUAL, day=81, burst=19))
    assert found.response is Response.FREEZE
    assert {f.signal for f in found.findings} == {Signal.DAY, Signal.BURST}


def test_the_reason_and_the_evidence_name_figures_and_bounds_only() -> None:
    measure = replace(USUAL, burst=5, network="elsewhere", cards=20, misses=12)
    found = judge(measure)
    assert found.reason() == ("guard: burst 5 > 4; misses 0.60 ≥ 0.60 (new-network)")
    evidence = found.evidence(measure)
    assert evidence["response"] == "freeze"
    assert evidence["context"] == ["new-network"]
    assert evidence["measure"] == {
        "burst": 5,
        "day": 10,
        "professional_day": 50,
        "cards": 20,
        "misses": 12,
        "neighbours": 0,
        "crowd": 0,
        "refusals": 0,
        "hour": 10,
    }
    assert "elsewhere" not in str(evidence)  # the network's digest is not evidence


@pytest.mark.parametrize(
    ("checked", "billed", "flagged"),
    [(19, 0, False), (20, 11, False), (20, 10, True), (100, 0, True), (100, 60, False)],
)
def test_rights_checks_never_billed(checked: int, billed: int, flagged: bool) -> None:
    found = signals.unbilled(checked, billed, T)
    assert (found is not None) == flagged
    if found is not None:
        assert found.signal is Signal.UNBILLED
        assert found.value == round((checked - billed) / checked, 3)


# --- properties -----------------------------------------------------------------------------

measures = st.builds(
    Measure,
    burst=st.integers(0, 60),
    day=st.integers(0, 200),
    professional_day=st.integers(0, 800),
    cards=st.integers(0, 100),
    misses=st.integers(0, 100),
    neighbours=st.integers(0, 10),
    crowd=st.integers(0, 30),
    refusals=st.integers(0, 20),
    hour=st.integers(0, 23),
    network=st.sampled_from([HOME, "elsewhere"]),
    device=st.sampled_from([LAPTOP, "script"]),
)
LEVEL = {Response.ALLOW: 0, Response.STEP_UP: 1, Response.THROTTLE: 1, Response.FREEZE: 2}


@given(measures, st.integers(1, 30))
def test_more_patients_never_soften_the_response(measure: Measure, more: int) -> None:
    before = judge(measure).response
    after = judge(replace(measure, burst=measure.burst + more, day=measure.day + more)).response
    assert LEVEL[after] >= LEVEL[before]


@given(measures)
def test_a_fresh_factor_never_hardens_and_software_never_steps_up(measure: Measure) -> None:
    old, fresh = judge(measure).response, judge(measure, fresh=True).response
    assert LEVEL[fresh] <= LEVEL[old]
    assert judge(measure, software=True).response is not Response.STEP_UP
    assert (old is Response.FREEZE) == (fresh is Response.FREEZE)


@given(measures)
def test_every_refusal_names_a_finding_beyond_its_bound(measure: Measure) -> None:
    found = judge(measure)
    assert found.refused == bool(found.findings)
    assert all(f.value > f.threshold or f.signal is Signal.MISSES for f in found.findings)


def test_respond_without_findings_allows() -> None:
    assert signals.respond([], software=False, fresh=False) is Response.ALLOW
    freeze = Finding(Signal.BURST, 20, 18, Response.FREEZE)
    assert signals.respond([freeze], software=True, fresh=True) is Response.FREEZE


# --- what is measured -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "network"),
    [
        ("203.0.113.7", "203.0.113.0/24"),
        ("203.0.113.250", "203.0.113.0/24"),
        ("2001:db8:1234:5678::1", "2001:db8:1234::/48"),
        ("testclient", "testclient"),
        (None, ""),
        ("", ""),
    ],
)
def test_a_network_is_a_line_or_an_operators_block(ip: str | None, network: str) -> None:
    assert signals.network_of(ip) == network


def test_a_browser_update_is_not_a_new_device_but_another_browser_is() -> None:
    firefox_131 = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0"
    firefox_132 = firefox_131.replace("131", "132")
    chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0.0.0"
    assert signals.device_of(firefox_131) == signals.device_of(firefox_132)
    assert signals.device_of(firefox_131) != signals.device_of(chrome)
    assert signals.device_of("python-requests/2.32.3") == "python-requests/"
    assert signals.device_of(None) == ""


def test_member_numbers_share_a_block_with_their_neighbours_only() -> None:
    secret = b"k" * 32
    keys = [
        signals.member_keys(secret, "75000001", f"10000000{n:02d}", 1) for n in (40, 41, 49, 50)
    ]
    members, blocks = zip(*keys, strict=True)
    assert len(set(members)) == 4
    assert blocks[0] == blocks[1] == blocks[2] != blocks[3]
    other_insurer = signals.member_keys(secret, "13000002", "1000000040", 1)
    assert other_insurer[1] != blocks[0]
    other_key = signals.member_keys(b"j" * 32, "75000001", "1000000040", 1)
    assert other_key != keys[0]  # keyed: no dictionary of numbers can be built without the key
    assert all(len(k) == 2 * signals.KEY_BYTES for k in members + blocks)
    assert "1000000040" not in "".join(members + blocks)


@pytest.mark.parametrize(
    ("at", "day", "hour", "to_midnight"),
    [
        (datetime(2026, 1, 29, 22, 30, tzinfo=UTC), "2026-01-29", 23, 1800),  # winter: UTC+1
        (datetime(2026, 1, 29, 23, 30, tzinfo=UTC), "2026-01-30", 0, 84600),
        (datetime(2026, 7, 14, 21, 59, 59, tzinfo=UTC), "2026-07-14", 23, 1),  # summer: UTC+2
        (datetime(2026, 7, 14, 22, 0, tzinfo=UTC), "2026-07-15", 0, 86400),
    ],
)
def test_days_and_hours_are_parisian(at: datetime, day: str, hour: int, to_midnight: int) -> None:
    assert paris_day(at).isoformat() == day
    assert signals.paris_hour(at) == hour
    assert signals.seconds_to_paris_midnight(at) == to_midnight


@pytest.mark.parametrize(
    ("current", "previous", "elapsed", "count"),
    [(3, 10, 0, 13), (3, 10, 300, 8), (3, 10, 599, 3), (3, 10, 600, 3), (0, 0, 100, 0)],
)
def test_the_sliding_burst(current: int, previous: int, elapsed: float, count: int) -> None:
    assert signals.sliding_count(current, previous, elapsed, 600) == count


def test_hours_worked_once_are_not_usual() -> None:
    assert signals.active_hours({9: 20, 10: 2, 3: 1}) == frozenset({9, 10})


def test_a_request_without_address_or_user_agent_is_judged_without_them() -> None:
    secret = b"k" * 32
    assert signals.network_key(secret, None) == signals.device_key(secret, "") == ""
    assert len(signals.network_key(secret, "203.0.113.7")) == 2 * signals.KEY_BYTES
    silent = replace(USUAL, network="", device="")
    assert signals.context_of(silent, norm(), T) == ()
