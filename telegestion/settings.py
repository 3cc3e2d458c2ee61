"""Run-time settings: environment variables win over the config file, which wins over defaults.

The config file is TOML (``TELEGESTION_CONFIG``, else ``./telegestion.toml`` when present), so an
operator can keep secrets such as the Twilio auth token out of the process environment.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the setting and the source."""


@dataclasses.dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///telegestion.db"
    node: str = "node1"
    default_region: str = "FR"
    agi_port: int = 4573
    http_port: int = 8080
    listen_interface: str = ""
    # A query that takes longer is cancelled, so a stuck database cannot hold a call's thread.
    statement_timeout_ms: int = 5000
    db_pool_size: int = 10
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_api_url: str = ""
    public_url: str = ""
    callback_delay_s: float = 5.0
    callback_retry_s: float = 60.0
    # The landline flow's waits (ivr.flow.FlowSettings), for FastAGI and the AGI script alike:
    # how long a carer may take to key a code, and the waits after the readback offers.
    flow_code_timeout_s: float = 6.0
    flow_arrival_readback_wait_s: float = 1.5
    flow_departure_readback_wait_s: float = 3.0
    flow_task_codes_timeout_s: float = 5.0
    config_file: str | None = None


_ENV_PREFIX = "TELEGESTION_"


def _coerce(name: str, raw: Any, target: type | str, source: str) -> Any:
    kind = target if isinstance(target, str) else target.__name__
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"{source}: {name} must be a number, not {raw!r}") from None
    return str(raw)


def load_settings(
    environ: Mapping[str, str] | None = None, config_path: str | Path | None = None
) -> Settings:
    """Read the settings once, at start-up, from the config file and the environment."""
    env = os.environ if environ is None else environ
    fields = {f.name: f for f in dataclasses.fields(Settings) if f.name != "config_file"}
    values: dict[str, Any] = {}

    path = config_path or env.get("TELEGESTION_CONFIG")
    if path is None and Path("telegestion.toml").is_file():
        path = "telegestion.toml"
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"config file {path} does not exist") from None
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"config file {path} cannot be read: {exc}") from None
        section = data.get("telegestion", data)
        for key, raw in section.items():
            if key not in fields:
                raise SettingsError(f"config file {path}: unknown setting {key!r}")
            values[key] = _coerce(key, raw, fields[key].type, f"config file {path}")

    for name, field in fields.items():
        raw = env.get(_ENV_PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = _coerce(name, raw, field.type, _ENV_PREFIX + name.upper())

    for name, value in values.items():
        if name.startswith("flow_") and not 0 < value <= 60:
            raise SettingsError(f"{name} must be between 0 and 60 seconds, not {value!r}")

    return Settings(**values, config_file=str(path) if path else None)
