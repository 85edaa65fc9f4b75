"""The `durable-agents` operations command line (install the `cli` extra).

```bash
durable-agents runs list --engine dbos --db app.sqlite
durable-agents runs show RUN --engine temporal --address localhost:7233
durable-agents runs resume RUN --engine prefect --app myapp.agents:agent
```

`app` is the [cyclopts](https://cyclopts.readthedocs.io) application, for calling the commands from Python
(`app(["runs", "list", "--engine", "dbos"])`); `main` is the console script's entry point.
"""

try:
    import cyclopts as _cyclopts  # noqa: F401  # pyright: ignore[reportUnusedImport]
    import rich as _rich  # noqa: F401  # pyright: ignore[reportUnusedImport]
except ImportError as e:  # pragma: no cover
    raise ImportError(
        "The durable-agents command line needs cyclopts and rich. "
        "Install it with: pip install 'durable-pydantic-agents[cli]'"
    ) from e

from ._app import app, main

__all__ = ["app", "main"]
