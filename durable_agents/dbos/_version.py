"""DBOS application versions that follow the agents: `application_version()` and the hook that makes it DBOS's default.

DBOS recovers a pending workflow only in a process of the same application version. Its default version is a
hash of the source of the registered workflow functions, and every agent's workflow is the same small function
of this package: editing a tool or the instructions would keep the version (old runs would be recovered onto
changed steps), while adding an agent or upgrading durable_agents would change it. So, unless the DBOS config
names a version, the version is derived from the fingerprint of every `DBOSAgent` of the DBOS registry (see
[`DurableAgent.fingerprint`][durable_agents.DurableAgent.fingerprint]) and from the code of the application's
own workflow functions.
"""

from __future__ import annotations

import importlib.metadata
import weakref
from collections.abc import Callable
from typing import Any

from dbos import _dbos as dbos_internals  # pyright: ignore[reportPrivateUsage]

from .._agent import DurableAgent
from .._fingerprint import code_fingerprint, digest
from .._telemetry import engine_logger

__all__ = ["agents_of", "application_version"]

_log = engine_logger("dbos")

# The durable agents of each DBOS registry, by workflow name. `DBOS.destroy(destroy_registry=True)` starts a new
# registry, and with it a new namespace, so tests (and apps that rebuild DBOS) can wrap an agent of the same name
# again.
_AGENTS: weakref.WeakKeyDictionary[object, dict[str, DurableAgent[Any, Any]]] = weakref.WeakKeyDictionary()


def _registry() -> Any:
    return dbos_internals._get_or_create_dbos_registry()  # pyright: ignore[reportPrivateUsage]


def agents_of(registry: object) -> dict[str, DurableAgent[Any, Any]]:
    """The durable agents of a DBOS registry, by workflow name; the first call makes the registry version them."""
    agents = _AGENTS.get(registry)
    if agents is None:
        agents = _AGENTS[registry] = {}
        _derive_default_version(registry)
    return agents


def application_version(app_name: str) -> str:
    """The application version DBOS launches with when its config names none: a digest of this process's agents.

    It is derived from the fingerprint of every `DBOSAgent` built so far (their tools' code and signatures,
    instructions and system prompts, output type, model, unit names, and the unit protocol version), the code
    of the application's own DBOS workflow functions, the DBOS version and the application's name. It is the same
    in every process that builds the same agents, and it changes when a deploy changes what a pending run would
    execute. After `DBOS.launch()`, `DBOS.application_version` is this value (unless the config, the
    `DBOS__APPVERSION` variable or patching mode set another one).

    Args:
        app_name: The `name` of the DBOS config.
    """
    registry = _registry()
    agents = agents_of(registry)
    workflows: dict[str, Callable[..., Any]] = dict(registry.workflow_info_map)
    parts = sorted(f"agent {name}:{agent.fingerprint()}" for name, agent in agents.items())
    parts += sorted(
        f"workflow {name}:{code_fingerprint(function)}" for name, function in workflows.items() if name not in agents
    )
    parts += [f"dbos {importlib.metadata.version('dbos')}", f"app {app_name}"]
    version = digest(parts)[:32]
    # DBOS recovers pending runs only in a process of their version: this line tells why a run was not recovered.
    _log.info("DBOS application version %s, derived from %d durable agents.", version, len(agents))
    return version


def _derive_default_version(registry: object) -> None:
    """Make `application_version()` the default version of DBOS applications built on `registry`.

    DBOS has no public way to choose how its default version is computed: `DBOS.launch()` asks the registry's
    `compute_app_version(app_name)` when neither the config, `DBOS__APPVERSION` nor patching mode set a version,
    and the registry is the only object that exists before launch whatever the order of `DBOS(config=...)` and
    the agents. So the registry's method is shadowed here, on that one instance, and nowhere else. If a DBOS
    release renames it, the shadow is not installed and DBOS's own default applies: that is what a test of
    this module catches.
    """
    if callable(getattr(registry, "compute_app_version", None)):
        registry.compute_app_version = application_version  # type: ignore[attr-defined]
    else:
        _log.warning(
            "This DBOS version has no registry.compute_app_version: DBOS's own default application version applies, "
            "and it does not change when an agent's tools or prompts change. Name a version in the DBOS config."
        )
