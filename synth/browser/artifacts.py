"""A browser run's artifacts — screenshot, Playwright trace, console log — redacted and
size-capped before they leave the run.

The trace is rewritten entry by entry through the run's redactor (a value typed with
`fill` is recorded in the action's parameters, the DOM snapshots and the request bodies)
and credential headers are masked by name. Its screencast is off: a secret typed into a
visible field would be in the pixels, which no redactor can read. The screenshot masks
every field holding a secret and carries no text metadata.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import struct
import tempfile
import zipfile
from typing import TYPE_CHECKING

from synth.model import Artifact
from synth.redact import MASK, SENSITIVE_HEADERS, Redactor

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Page

log = logging.getLogger("synth.browser")

SCREENSHOT = "screenshot.png"
TRACE = "trace.zip"
CONSOLE = "console.log"
_HEADER = re.compile(
    r'(\{\s*"name"\s*:\s*"(?P<name>[^"]+)"\s*,\s*"value"\s*:\s*)"(?:[^"\\]|\\.)*"',
)
_PNG_TEXT_CHUNKS = {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME"}


class ArtifactCollector:
    """Collects one run's artifacts; what is over the cap is left out with a note."""

    def __init__(self, redactor: Redactor, max_bytes: int) -> None:
        self._redactor = redactor
        self._max = max_bytes
        self._kept: list[Artifact] = []
        self._notes: list[str] = []

    async def screenshot(self, page: Page, *, name: str = SCREENSHOT) -> None:
        try:
            values = await page.eval_on_selector_all(
                "input, textarea", "els => els.map((e) => e.value || '')"
            )
            fields = page.locator("input, textarea")
            masked = [
                fields.nth(i)
                for i, value in enumerate(values)
                if isinstance(value, str) and value and self._redactor.text(value) != value
            ]
            png = await page.screenshot(mask=masked, timeout=5000)
        except Exception as error:
            self._notes.append(f"no screenshot: {str(error).splitlines()[0]}")
            return
        self._keep(name, "image/png", strip_png_text(png))

    async def trace(self, context: BrowserContext, *, keep: bool) -> None:
        if not keep:
            await context.tracing.stop()
            return
        handle, path = tempfile.mkstemp(prefix="synth-trace-", suffix=".zip")
        os.close(handle)
        try:
            await context.tracing.stop(path=path)
            # Reading and rewriting a trace of a few MB is blocking work: off the loop.
            data = await asyncio.to_thread(_redacted_file, path, self._redactor)
        finally:
            os.unlink(path)
        self._keep(TRACE, "application/zip", data)

    def note(self, text: str) -> None:
        """A line for the console log about what could not be kept."""
        self._notes.append(text)

    def console(self, lines: list[str]) -> None:
        text = "\n".join([*lines, *(f"synth: {note}" for note in self._notes)])
        text = text or "synth: the page logged nothing to its console"
        data = self._redactor.text(text).encode()
        if len(data) > self._max:
            data = data[: self._max - 64] + b"\n[truncated at the artifact size cap]\n"
        if data:
            self._kept.append(Artifact(CONSOLE, "text/plain; charset=utf-8", data))

    def _keep(self, name: str, content_type: str, data: bytes) -> None:
        if len(data) > self._max:
            note = f"{name} left out: {len(data)} bytes over the {self._max}-byte cap"
            self._notes.append(note)
            log.warning("browser artifact over its cap", extra={"artifact": name})
            return
        self._kept.append(Artifact(name, content_type, data))

    def artifacts(self) -> tuple[Artifact, ...]:
        return tuple(self._kept)


def _redacted_file(path: str, redactor: Redactor) -> bytes:
    with open(path, "rb") as raw:
        return redact_zip(raw.read(), redactor)


def redact_zip(data: bytes, redactor: Redactor) -> bytes:
    """The zip with every entry's text passed through the redactor and credential
    headers masked (bytes that are not UTF-8 are kept as they are)."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            content = source.read(info.filename)
            target.writestr(info.filename, redact_bytes(content, redactor))
    return out.getvalue()


def redact_bytes(content: bytes, redactor: Redactor) -> bytes:
    text = content.decode("utf-8", errors="surrogateescape")
    text = _HEADER.sub(_mask_header, redactor.text(text))
    return text.encode("utf-8", errors="surrogateescape")


def _mask_header(found: re.Match[str]) -> str:
    if found.group("name").lower() in SENSITIVE_HEADERS:
        return f'{found.group(1)}"{MASK}"'
    return found.group(0)


def strip_png_text(png: bytes) -> bytes:
    """The PNG without text, EXIF or time chunks (nothing but pixels and how to show
    them); bytes that are not a PNG are returned as they are."""
    signature = b"\x89PNG\r\n\x1a\n"
    if not png.startswith(signature):
        return png
    out, at = [signature], len(signature)
    while at + 8 <= len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind = png[at + 4 : at + 8]
        end = at + 12 + length
        if kind not in _PNG_TEXT_CHUNKS:
            out.append(png[at:end])
        at = end
    return b"".join(out)
