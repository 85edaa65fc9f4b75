"""A module that records being imported: a crafted error frame names it, and must not make anyone import it."""

import os

os.environ["DURABLE_AGENTS_IMPORT_PROBE"] = "imported"


class ProbeError(Exception):
    """An error class a crafted frame names."""
