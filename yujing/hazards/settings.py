"""Settings of hazard handling, read from `YJ_*` (README "Hazards" lists them)."""

from __future__ import annotations

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from yujing.levels import Level


class HazardSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YJ_", extra="ignore")

    # Repeated alarms on one point propose a hazard: this many alarms at or above this
    # level within this window (yujing's default: 3 of orange or higher in 24 h).
    hazard_repeat_count: int = 3
    hazard_repeat_level: str = "orange"
    hazard_repeat_window_s: float = 24 * 3600.0

    # How often the watch (proposals, overdue hazards, tiered pushes) runs.
    hazard_watch_every_s: float = 30.0

    # Evidence uploads.
    hazard_evidence_max_bytes: int = 10 * 1024 * 1024

    @field_validator("hazard_repeat_level")
    @classmethod
    def _level_word(cls, word: str) -> str:
        Level.parse(word)
        return word

    @property
    def repeat_level(self) -> Level:
        return Level.parse(self.hazard_repeat_level)
