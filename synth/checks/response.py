"""A response seen by check code, with expectations that read like what they check:

    r.expect_status(200).expect_json("$.items[0].price", gt=0).expect_latency("500ms")

Each expectation returns the response (to chain) or raises `CheckFailure` carrying the
step, the request, expected vs actual and a redacted excerpt of the body.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

import httpx2
import pydantic

from synth.checks.failures import CheckFailure, short_repr
from synth.checks.jsonpath import PathNotFound, json_type, resolve
from synth.model import Failure, FailureType, HttpTimings, format_seconds
from synth.units import parse_duration

if TYPE_CHECKING:
    from synth.redact import Redactor

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


_HEX_EXCERPT_BYTES = 16


def _undecodable_before_the_cut(content: bytes) -> bool:
    """True unless only the last few bytes (a character the body cap cut) keep `content`
    from being UTF-8."""
    try:
        content[:-3].decode()
    except UnicodeDecodeError:
        return True
    return False


class Response:
    """One HTTP response: status, headers, the body (up to the configured cap) and timings."""

    def __init__(
        self,
        *,
        method: str,
        url: str,
        status_code: int,
        headers: httpx2.Headers,
        content: bytes,
        truncated: bool,
        timings: HttpTimings,
        step: str,
        redactor: Redactor,
        excerpt_chars: int,
        parsed: Any = MISSING,
        request_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.method = method
        self.request_headers: Mapping[str, str] = request_headers or {}
        self.url = url  # already redacted
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self.truncated = truncated
        self.timings = timings
        self.step = step
        self._redactor = redactor
        self._excerpt_chars = excerpt_chars
        self._json: Any = parsed

    def __repr__(self) -> str:
        return f"<Response {self.method} {self.url} {self.status_code}>"

    @property
    def elapsed_s(self) -> float:
        """Seconds from sending the request to the end of the body."""
        return self.timings.total_s

    @property
    def text(self) -> str:
        return self.content.decode(self._charset(), errors="replace")

    def _charset(self) -> str:
        match = re.search(r"charset=([\w\-]+)", self.headers.get("content-type", ""))
        return match.group(1) if match else "utf-8"

    @property
    def is_binary(self) -> bool:
        """The body is not text in its declared charset (or holds NUL bytes)."""
        if b"\x00" in self.content:
            return True
        try:
            self.content.decode(self._charset())
        except (UnicodeDecodeError, LookupError):
            # A cut at the body cap can split a character: only whole bytes count.
            return not self.truncated or _undecodable_before_the_cut(self.content)
        return False

    def _binary_summary(self) -> str:
        kind = self.headers.get("content-type", "no content type")
        encoding = self.headers.get("content-encoding")
        kind += f", Content-Encoding {encoding}" if encoding else ""
        return f"{len(self.content)} bytes of {kind}"

    def excerpt(self) -> str:
        """The start of the body, redacted, for failure reports; a binary body is
        described (size, type, its first bytes in hex), never dumped."""
        if self.is_binary:
            start = self.content[:_HEX_EXCERPT_BYTES].hex()
            more = "…" if len(self.content) > _HEX_EXCERPT_BYTES else ""
            return f"<binary body: {self._binary_summary()}, starts {start}{more}>"
        # Redact before cutting, so a secret straddling the cut cannot show in part.
        text = self._redactor.text(self.text)
        limit = self._excerpt_chars
        return text[:limit] + ("…" if len(text) > limit or self.truncated else "")

    def fail(
        self,
        failure_type: FailureType,
        message: str,
        *,
        expected: object = MISSING,
        actual: object = MISSING,
    ) -> CheckFailure:
        """Build the failure for this response (callers raise it)."""
        redact = self._redactor.text
        return CheckFailure(
            Failure(
                type=failure_type,
                message=redact(message),
                expected=None if expected is MISSING else redact(_show(expected)),
                actual=None if actual is MISSING else redact(_show(actual)),
                method=self.method,
                url=self.url,
                response_excerpt=self.excerpt() or None,
                request_headers=self._redactor.headers(self.request_headers.items()),
                response_headers=self._redactor.headers(self.headers.multi_items()),
            ),
            step=self.step,
        )

    # -- reading the body -------------------------------------------------------------

    def json(self) -> Any:
        """The body decoded as JSON; a body that is not JSON fails the step as `schema`."""
        if self._json is MISSING:
            if self.truncated:
                raise self.fail(
                    FailureType.SCHEMA,
                    f"response body exceeds the {len(self.content)} byte cap; cannot parse JSON",
                )
            try:
                self._json = json.loads(self.content)
            except ValueError as exc:
                binary = self.is_binary
                raise self.fail(
                    FailureType.SCHEMA,
                    "response is not valid JSON: " + ("the body is binary" if binary else str(exc)),
                    expected="a JSON document",
                    actual=(
                        self._binary_summary()
                        if binary
                        else f"{len(self.content)} bytes of {self.headers.get('content-type', '?')}"
                    ),
                ) from None
        return self._json

    def json_path(self, path: str, default: Any = MISSING) -> Any:
        """The value at a JSON path (`$.order.id`); missing fails as `schema` unless a
        default is given."""
        try:
            return resolve(self.json(), path)
        except PathNotFound as exc:
            if default is not MISSING:
                return default
            raise self.fail(
                FailureType.SCHEMA, f"{path}: {exc}", expected=f"{path} present", actual="missing"
            ) from None

    # -- expectations -----------------------------------------------------------------

    def expect_status(self, *expected: int | str) -> Self:
        """Status is one of `expected` (ints, or classes like "2xx"); default 2xx.
        401/403 fail as `auth`, anything else as `http_status`."""
        wanted = expected or ("2xx",)
        if any(_status_matches(self.status_code, w) for w in wanted):
            return self
        kind = FailureType.AUTH if self.status_code in (401, 403) else FailureType.HTTP_STATUS
        shown = " or ".join(str(w) for w in wanted)
        raise self.fail(
            kind,
            f"expected status {shown}, got {self.status_code}",
            expected=shown,
            actual=self.status_code,
        )

    def expect_header(
        self,
        name: str,
        value: str | None = None,
        *,
        contains: str | None = None,
        matches: str | None = None,
    ) -> Self:
        """Header `name` is present, and equals / contains / matches the given text."""
        actual = self.headers.get(name)
        if actual is None:
            raise self.fail(
                FailureType.ASSERTION,
                f"header {name} is missing",
                expected=f"{name} present",
                actual="missing",
            )
        ok = (
            (value is None or actual == value)
            and (contains is None or contains in actual)
            and (matches is None or re.search(matches, actual) is not None)
        )
        if not ok:
            wanted = value if value is not None else contains if contains is not None else matches
            raise self.fail(
                FailureType.ASSERTION,
                f"header {name} does not match",
                expected=wanted,
                actual=actual,
            )
        return self

    def expect_json(
        self,
        path: str,
        value: Any = MISSING,
        *,
        exists: bool | None = None,
        type: str | None = None,
        contains: Any = MISSING,
        matches: str | None = None,
        gt: float | None = None,
        ge: float | None = None,
        lt: float | None = None,
        le: float | None = None,
        length: int | None = None,
    ) -> Self:
        """The value at `path` exists (or not) and satisfies every condition given.

        A missing field or a wrong JSON type is contract drift (`schema`); a wrong value is
        an `assertion`.
        """
        try:
            actual = resolve(self.json(), path)
        except PathNotFound as exc:
            if exists is False:
                return self
            raise self.fail(
                FailureType.SCHEMA, f"{path}: {exc}", expected=f"{path} present", actual="missing"
            ) from None
        if exists is False:
            raise self.fail(
                FailureType.ASSERTION,
                f"{path} should be absent",
                expected="absent",
                actual=actual,
            )
        if type is not None and json_type(actual) != type:
            raise self.fail(
                FailureType.SCHEMA,
                f"{path} is a {json_type(actual)}, expected {type}",
                expected=type,
                actual=f"{json_type(actual)} {short_repr(actual)}",
            )
        for label, wanted, ok in _value_conditions(actual, value, contains, matches, length):
            if not ok:
                raise self.fail(
                    FailureType.ASSERTION,
                    f"{path} {label} {short_repr(wanted)}",
                    expected=f"{label} {short_repr(wanted)}",
                    actual=actual,
                )
        comparisons: tuple[tuple[str, float | None, Callable[[float, float], bool]], ...] = (
            ("> ", gt, operator.gt),
            (">= ", ge, operator.ge),
            ("< ", lt, operator.lt),
            ("<= ", le, operator.le),
        )
        for label, bound, compare in comparisons:
            if bound is None:
                continue
            if not isinstance(actual, int | float) or isinstance(actual, bool):
                raise self.fail(
                    FailureType.SCHEMA,
                    f"{path} is a {json_type(actual)}, expected a number",
                    expected=f"number {label}{bound}",
                    actual=f"{json_type(actual)} {short_repr(actual)}",
                )
            if not compare(actual, bound):
                raise self.fail(
                    FailureType.ASSERTION,
                    f"{path} should be {label}{bound}",
                    expected=f"{label}{bound}",
                    actual=actual,
                )
        return self

    def expect_schema(self, schema: type[ModelT] | dict[str, Any]) -> Self:
        """The JSON body satisfies a pydantic model or a JSON Schema; fails as `schema`
        listing each violation with its path."""
        self.validated(schema)
        return self

    def validated(self, schema: type[ModelT] | dict[str, Any]) -> Any:
        """Like `expect_schema`, returning the parsed model instance (or the JSON)."""
        document = self.json()
        if isinstance(schema, dict):
            import jsonschema  # ~3 MB a process; most checks never validate a schema

            validator_cls = jsonschema.validators.validator_for(schema)
            errors = sorted(validator_cls(schema).iter_errors(document), key=lambda e: list(e.path))
            if errors:
                lines = [f"{_schema_path(e.absolute_path)}: {e.message}" for e in errors[:5]]
                raise self.fail(
                    FailureType.SCHEMA,
                    f"response does not match the JSON Schema ({len(errors)} violation(s))",
                    expected=schema.get("title", "the JSON Schema"),
                    actual="; ".join(lines),
                )
            return document
        try:
            return schema.model_validate(document)
        except pydantic.ValidationError as exc:
            lines = [
                f"$.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                f" (got {short_repr(err.get('input'), 40)})"
                for err in exc.errors()[:5]
            ]
            raise self.fail(
                FailureType.SCHEMA,
                f"response does not match {schema.__name__} ({exc.error_count()} violation(s))",
                expected=schema.__name__,
                actual="; ".join(lines),
            ) from None

    def expect_body_contains(self, text: str) -> Self:
        """The body contains `text`."""
        if text not in self.text:
            raise self.fail(
                FailureType.ASSERTION,
                f"body does not contain {text!r}",
                expected=f"contains {text!r}",
                actual="not found",
            )
        return self

    def expect_body_matches(self, pattern: str) -> Self:
        """The body matches the regular expression `pattern`."""
        if re.search(pattern, self.text) is None:
            raise self.fail(
                FailureType.ASSERTION,
                f"body does not match /{pattern}/",
                expected=f"matches /{pattern}/",
                actual="no match",
            )
        return self

    def expect_latency(self, max: str | float) -> Self:
        """The whole exchange took at most `max` ("500ms", 0.5)."""
        limit = parse_duration(max)
        if self.elapsed_s > limit:
            raise self.fail(
                FailureType.ASSERTION,
                f"took {format_seconds(self.elapsed_s)}, limit {format_seconds(limit)}",
                expected=f"<= {format_seconds(limit)}",
                actual=format_seconds(self.elapsed_s),
            )
        return self


def _status_matches(status: int, wanted: int | str) -> bool:
    if isinstance(wanted, int):
        return status == wanted
    text = wanted.strip().lower()
    if len(text) == 3 and text.endswith("xx") and text[0].isdigit():
        return status // 100 == int(text[0])
    return text.isdigit() and status == int(text)


def _value_conditions(
    actual: Any, value: Any, contains: Any, matches: str | None, length: int | None
) -> list[tuple[str, Any, bool]]:
    checks: list[tuple[str, Any, bool]] = []
    if value is not MISSING:
        checks.append(("should equal", value, actual == value))
    if contains is not MISSING:
        ok = isinstance(actual, str | list | dict) and contains in actual
        checks.append(("should contain", contains, ok))
    if matches is not None:
        checks.append(("should match", matches, re.search(matches, str(actual)) is not None))
    if length is not None:
        size = len(actual) if isinstance(actual, str | list | dict) else None
        checks.append(("should have length", length, size == length))
    return checks


def _schema_path(path: Any) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _show(value: object) -> str:
    return value if isinstance(value, str) else short_repr(value)
