"""Settings of alert handling (escalation, flapping, webhooks, CAP), read from `YJ_*`.

They live here, beside the code that uses them, with defaults an operator can override
(e.g. `YJ_ESCALATE_AFTER_S=600`); docs/contracts.md lists them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from yujing.alerts.destinations import Network, networks
from yujing.levels import Level


class AlertSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YJ_", extra="ignore")

    # Escalation: an active alert at or above this level, unacknowledged this long, gets an
    # `escalated` notice to the escalation targets, repeated every `escalate_after_s`.
    escalate_after_s: float = 900.0
    escalate_min_level: str = "red"
    escalate_every_s: float = 30.0  # how often the escalation check runs

    # Flapping (ISA-18.2 chattering): more than `flap_max_reopens` reopenings within
    # `flap_window_s` mark the alert chattering; people get one notice, not a storm.
    flap_max_reopens: int = 3
    flap_window_s: float = 3600.0

    # Webhooks: attempts before a delivery is dead-lettered, exponential backoff between.
    webhook_max_attempts: int = 8
    webhook_backoff_s: float = 2.0
    webhook_backoff_max_s: float = 600.0
    webhook_timeout_s: float = 10.0
    webhook_poll_s: float = 0.5
    # Destinations: public addresses only, plus these ranges (comma-separated CIDRs, e.g.
    # `10.8.0.0/16,127.0.0.1/32`); loopback, private and link-local are refused otherwise.
    webhook_allow_cidrs: str = ""
    # Fernet keys for the webhook secrets at rest, comma-separated: the first encrypts, all
    # decrypt (rotation). Empty: one key kept in `YJ_DATA_DIR/webhook-secret.key`, made on
    # first use — fine for one host; several hosts must share a key through this setting.
    webhook_secret_keys: str = ""
    data_dir: Path = Path("var")

    # CAP: who issues the messages (national profile: identifier = code + _YYYYMMDDHHMISS).
    cap_sender: str = "yujing@localhost"
    cap_sender_code: str = "YJ000000"
    cap_sender_name: str = "yujing 预警"
    cap_utc_offset_h: int = 8  # China Standard Time, for `sent` and the identifier stamp
    # Where users reach the API (scheme, host, port, path prefix), for links yujing writes
    # into documents such as the CAP feed's self link; empty: links relative to the host.
    public_url: str = ""

    # Alarm-management figures on /metrics are recomputed this often.
    stats_every_s: float = 60.0

    @field_validator("escalate_min_level")
    @classmethod
    def _level_word(cls, word: str) -> str:
        Level.parse(word)
        return word

    @field_validator("webhook_allow_cidrs")
    @classmethod
    def _cidrs(cls, spec: str) -> str:
        networks(spec)  # raises on a malformed range: refused at start, not at delivery
        return spec

    @property
    def webhook_allow(self) -> list[Network]:
        return networks(self.webhook_allow_cidrs)

    @property
    def escalate_level(self) -> Level:
        return Level.parse(self.escalate_min_level)
