"""The detection's settings: their tables are checked, and production keeps the detection on."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from rempart.errors import ConfigurationError
from rempart.guard.detection import Guard, protection_for
from rempart.guard.quotas import Quotas
from rempart.settings import Settings


def test_production_refuses_to_run_without_the_detection(tmp_path: Path) -> None:
    settings = Settings(
        env="production",
        database_url="postgresql+psycopg://db/rempart",
        master_key_file=tmp_path / "master.key",
        guard_detection=False,
    )
    with pytest.raises(ConfigurationError, match="REMPART_GUARD_DETECTION"):
        settings.check_production()


def test_a_load_test_may_turn_the_detection_off() -> None:
    assert isinstance(protection_for(Settings(env="test")), Guard)
    bare = protection_for(Settings(env="test", guard_detection=False))
    assert isinstance(bare, Quotas)
    assert not isinstance(bare, Guard)


@pytest.mark.parametrize(
    "changes",
    [
        {"guard_priors": {"optician": (3, 4)}},  # a busy 10 minutes above the busy day
        {"guard_hours": {"optician": (20, 9)}},
        {"guard_hours": {"optician": (0, 25)}},
        {"guard_neighbours_step_up": 6, "guard_neighbours_freeze": 5},
        {"guard_miss_ratio_step_up": 0.7, "guard_miss_ratio_freeze": 0.6},
        {"guard_burst_factor": 0.5},
    ],
)
def test_settings_that_make_no_sense_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(env="test", **changes)  # type: ignore[arg-type]
