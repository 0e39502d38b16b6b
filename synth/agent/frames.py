"""Length-prefixed pickle frames: how the agent and its run processes talk over pipes.

Both ends are the same synth installation started by the agent itself, over a private
pipe, so pickle is safe here and carries results (dataclasses, enums) without a schema.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from typing import Any

_HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024


def encode(message: tuple[Any, ...]) -> bytes:
    """One frame: 4-byte big-endian length, then the pickled message."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


async def read(reader: asyncio.StreamReader) -> tuple[Any, ...] | None:
    """The next message, or None at end of stream (the other side closed or died)."""
    try:
        header = await reader.readexactly(_HEADER.size)
        (size,) = _HEADER.unpack(header)
        if size > MAX_FRAME:
            raise ValueError(f"frame of {size} bytes is over the {MAX_FRAME}-byte bound")
        body = await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        return None
    message = pickle.loads(body)  # noqa: S301 -- our own child process, a private pipe
    if not isinstance(message, tuple) or not message:
        raise ValueError(f"not a message: {type(message).__name__}")
    return message
