"""How a unit's frame travels as a Temporal payload: JSON, readable in the UI and the CLI.

A frame (see `durable_agents._frames`) is already one JSON object, so it is stored as it is, under
the `json/plain` encoding, instead of going through the payload converter a second time. Activities
take and return a `temporalio.common.RawValue`: the payload converter passes it through
untouched, and the client's payload codec (encryption, compression) and codec server still apply
to it, because codecs run on every payload after conversion.

Histories written before (frames under `binary/plain`, the activities typed `bytes`) hold the same
bytes under another encoding, so both are read: they replay, and runs in flight across the upgrade
carry on.
"""

from __future__ import annotations

from temporalio.api.common.v1 import Payload
from temporalio.common import RawValue

from ..exceptions import ProtocolError

__all__ = ["FRAME_ENCODING", "READABLE_ENCODINGS", "frame_of", "payload_of"]

FRAME_ENCODING = b"json/plain"
"""The encoding frames are written with."""

READABLE_ENCODINGS = (FRAME_ENCODING, b"binary/plain")
"""The encodings frames are read from (`binary/plain`: activities typed `bytes`, before December 2026)."""


def payload_of(frame: bytes) -> RawValue:
    """The payload that carries `frame` (JSON bytes) as it is."""
    return RawValue(Payload(metadata={"encoding": FRAME_ENCODING}, data=frame))


def frame_of(value: RawValue) -> bytes:
    """The frame a payload carries, under either readable encoding.

    Raises:
        ProtocolError: The payload has another encoding, e.g. it is still encoded by a payload codec that the
            reader's data converter does not have.
    """
    encoding = value.payload.metadata.get("encoding", b"")
    if encoding not in READABLE_ENCODINGS:
        raise ProtocolError(
            f"A unit payload has the encoding {encoding.decode(errors='replace')!r}, not one of "
            f"{', '.join(e.decode() for e in READABLE_ENCODINGS)}. If a payload codec encoded it, give the client "
            "that reads it the same codec (`DataConverter(payload_codec=...)`)."
        )
    return value.payload.data
