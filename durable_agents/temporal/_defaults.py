"""Activity defaults per unit kind, and the checks that refuse nonsense configs when the wrapper is built.

Temporal's own defaults suit neither a model request nor a crash: one attempt may run for as long as
`start_to_close_timeout` allows, a crashed worker's attempt is noticed only when that timeout ends, and a
failing activity is retried forever, each retry a paid request. So every unit gets a heartbeat timeout
(units heartbeat while they run, see `_heartbeat.py`), a bounded retry policy, and a
`schedule_to_start_timeout` that fails a run whose activity no worker picks up.

A default fills only a key that no config layer sets; a key set to `None` leaves it to Temporal.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Any

from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityConfig

from .._units import UnitKind
from ..exceptions import ConfigurationError

__all__ = [
    "DEFAULT_ACTIVITY_CONFIGS",
    "DEFAULT_SCHEDULE_TO_START_TIMEOUT",
    "TIMEOUT_KEYS",
    "check_values",
    "with_defaults",
]

TIMEOUT_KEYS = (
    "schedule_to_close_timeout",
    "schedule_to_start_timeout",
    "start_to_close_timeout",
    "heartbeat_timeout",
)

DEFAULT_SCHEDULE_TO_START_TIMEOUT = timedelta(minutes=5)
"""How long a unit's activity may wait for a worker before the run fails with `UnitNotRegisteredError`.

Long enough for a backlog on a busy fleet and for a rolling deploy; a fleet that leaves activities queued
for longer is under-provisioned. Short enough that a worker missing the agent fails the run in minutes
instead of leaving it Scheduled forever.
"""

# Waits 1, 2, 4 and 8 s between the attempts (a `Retry-After` replaces the wait): an outage or a bug costs at most
# five attempts, then the run fails.
_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_attempts=5)

DEFAULT_ACTIVITY_CONFIGS: Mapping[UnitKind, ActivityConfig] = MappingProxyType(
    {
        UnitKind.MODEL: ActivityConfig(
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(seconds=30),
            schedule_to_start_timeout=DEFAULT_SCHEDULE_TO_START_TIMEOUT,
            retry_policy=_RETRY,
        ),
        UnitKind.TOOL: ActivityConfig(
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=timedelta(seconds=30),
            schedule_to_start_timeout=DEFAULT_SCHEDULE_TO_START_TIMEOUT,
            retry_policy=_RETRY,
        ),
        UnitKind.LIST: ActivityConfig(
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=timedelta(seconds=30),
            schedule_to_start_timeout=DEFAULT_SCHEDULE_TO_START_TIMEOUT,
            retry_policy=_RETRY,
        ),
        UnitKind.EVENTS: ActivityConfig(
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=timedelta(seconds=30),
            schedule_to_start_timeout=DEFAULT_SCHEDULE_TO_START_TIMEOUT,
            retry_policy=_RETRY,
        ),
    }
)
"""The activity config a unit of each kind gets for the keys its config layers leave unset."""


def with_defaults(kind: UnitKind, config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` (the unit's merged layers) completed with the defaults of its unit kind.

    A key present in `config` is kept, even as `None` (Temporal's own behaviour). The start-to-close default is
    added only when neither `start_to_close_timeout` nor `schedule_to_close_timeout` is set to a value, since
    Temporal needs one of them.
    """
    options = dict(config)
    for key, value in DEFAULT_ACTIVITY_CONFIGS[kind].items():
        if key == "start_to_close_timeout":
            if options.get(key) is None and options.get("schedule_to_close_timeout") is None:
                options[key] = value
        elif key not in options:
            options[key] = value
    return options


def check_values(config: Mapping[str, Any]) -> None:
    """Refuse, when the wrapper is built, a config layer that Temporal would reject in every workflow task."""
    for key in TIMEOUT_KEYS:
        value = config.get(key)
        if value is None:
            continue
        if not isinstance(value, timedelta):
            raise ConfigurationError(
                f"ActivityConfig key {key!r} must be a datetime.timedelta, got {value!r}. "
                f"Fix: `{key}=timedelta(seconds={value!r})`."
            )
        if value <= timedelta(0):
            raise ConfigurationError(
                f"ActivityConfig key {key!r} must be positive, got {value!r}. "
                f"Fix: a positive duration, or leave {key!r} out to get the default."
            )
    policy = config.get("retry_policy")
    if policy is None:
        return
    if not isinstance(policy, RetryPolicy):
        raise ConfigurationError(
            f"ActivityConfig key 'retry_policy' must be a temporalio.common.RetryPolicy, got {policy!r}."
        )
    try:
        policy._validate()  # pyright: ignore[reportPrivateUsage]  # the SDK's own rules, checked before any run
    except ValueError as exc:
        raise ConfigurationError(f"ActivityConfig 'retry_policy' is invalid: {exc}. Fix the RetryPolicy.") from exc
