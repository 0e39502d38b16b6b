"""Browser probe: the YAML form of a browser step, a list of actions on the run's page.

```yaml
- name: log in
  browser:
    - goto: /
    - fill: {label: Email, value: "${secrets.user}"}
    - click: {role: button, name: Log in}
    - expect_url: /shop
    - expect_text: {role: status, text: Order confirmed}
    - screenshot: cart
```
Each action finds its element the way Playwright recommends — by role and accessible
name, label, text, test id or a CSS selector — and fails like the same call in a Python
check (`assertion` naming the locator, `timeout`, `http_status`, ...). The step's facts
are the page's (synth.browser.facts).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from synth.browser.facts import BrowserFacts
from synth.probes.contract import Probe
from synth.probes.options import Duration, ProbeOptions, Templated

if TYPE_CHECKING:
    from playwright.async_api import Locator, Page

    from synth.checks.context import FlowContext

AriaRole = str  # Playwright's role names ("button", "link", "textbox", "status", ...)


class Target(BaseModel):
    """How an action finds its element: exactly one of role (with an optional name),
    label, text, placeholder, test_id or selector."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    role: AriaRole | None = None
    name: Templated | None = None
    label: Templated | None = None
    text: Templated | None = None
    placeholder: Templated | None = None
    test_id: str | None = None
    selector: str | None = None
    exact: bool = False

    def finders(self) -> list[str]:
        return [
            key
            for key in ("role", "label", "placeholder", "test_id", "selector")
            if getattr(self, key) is not None
        ]

    def describe(self) -> str:
        if self.role is not None:
            return f"role={self.role}" + (f" name={self.name!r}" if self.name else "")
        for key in ("label", "placeholder", "test_id", "selector", "text"):
            value = getattr(self, key)
            if value is not None:
                return f"{key}={value!r}"
        return "the page"


class Click(Target):
    @model_validator(mode="after")
    def _one(self) -> Click:
        _exactly_one(self, allow_text=True)
        return self


class Fill(Target):
    value: Templated

    @model_validator(mode="after")
    def _one(self) -> Fill:
        _exactly_one(self, allow_text=False)
        return self


class ExpectText(Target):
    """The element (default: the whole page body) contains `contains`, or `text` when it
    finds by another key (`{role: status, text: Order confirmed}`)."""

    contains: Templated | None = None

    @model_validator(mode="after")
    def _wanted(self) -> ExpectText:
        if self.contains is None and self.text is None:
            raise ValueError("expect_text needs the text to find: text or contains")
        if len(self.finders()) > 1:
            raise ValueError(f"find the element one way, not by {' and '.join(self.finders())}")
        return self


class Action(BaseModel):
    """One action of a browser step: exactly one key."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    goto: Templated | None = None
    click: Click | None = None
    fill: Fill | None = None
    expect_text: ExpectText | None = None
    expect_url: Templated | None = None
    screenshot: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,40}$")
    wait: Duration | None = Field(default=None, le=60)

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, value: Any) -> Any:
        if isinstance(value, dict):
            value = dict(value)
            if isinstance(value.get("click"), str):
                value["click"] = {"text": value["click"]}
            if isinstance(value.get("expect_text"), str):
                value["expect_text"] = {"contains": value["expect_text"]}
        return value

    @model_validator(mode="after")
    def _one_key(self) -> Action:
        keys = [key for key in type(self).model_fields if getattr(self, key) is not None]
        if len(keys) != 1:
            raise ValueError(
                "an action has exactly one of goto, click, fill, expect_text, expect_url, "
                "screenshot, wait" + (f", not {' and '.join(keys)}" if keys else "")
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in type(self).model_fields if getattr(self, k) is not None)


class BrowserOptions(ProbeOptions):
    """`browser:` — the actions, in order (a list), on the run's page."""

    actions: list[Action] = Field(min_length=1, max_length=200)
    timeout: Duration | None = None
    """How long each action waits (default `browser.action_timeout`)."""

    @model_validator(mode="before")
    @classmethod
    def _list_form(cls, value: Any) -> Any:
        return {"actions": value} if isinstance(value, list) else value


def _exactly_one(target: Target, *, allow_text: bool) -> None:
    finders = target.finders() + (["text"] if allow_text and target.text is not None else [])
    if len(finders) != 1:
        raise ValueError(
            "find the element one way: role (with name), label, placeholder, test_id, "
            + ("text, " if allow_text else "")
            + "or selector"
            + (f", not {' and '.join(finders)}" if finders else "")
        )


def locate(page: Page, target: Target) -> Locator:
    """The Playwright locator of `target`."""
    if target.role is not None:
        return page.get_by_role(
            target.role,  # type: ignore[arg-type]  # Playwright checks the role name
            name=target.name,
            exact=target.exact,
        )
    if target.label is not None:
        return page.get_by_label(target.label, exact=target.exact)
    if target.placeholder is not None:
        return page.get_by_placeholder(target.placeholder, exact=target.exact)
    if target.test_id is not None:
        return page.get_by_test_id(target.test_id)
    if target.selector is not None:
        return page.locator(target.selector)
    if target.text is not None:
        return page.get_by_text(target.text, exact=target.exact)
    return page.locator("body")


async def run_browser(ctx: FlowContext, options: BrowserOptions) -> BrowserFacts:
    from playwright.async_api import expect

    page = await ctx.page()
    timeout_ms = (options.timeout or ctx.browser_settings.action_timeout) * 1000
    for action in options.actions:
        kind = action.kind
        if action.goto is not None:
            await page.goto(action.goto)
        elif action.click is not None:
            await locate(page, action.click).click(timeout=timeout_ms)
        elif action.fill is not None:
            await locate(page, action.fill).fill(action.fill.value, timeout=timeout_ms)
        elif action.expect_text is not None:
            wanted = action.expect_text
            finder = wanted.model_copy(update={"text": None}) if wanted.finders() else wanted
            text = wanted.contains if wanted.contains is not None else wanted.text
            assert text is not None
            locator = locate(page, finder if wanted.finders() else Target())
            await expect(locator).to_contain_text(text, timeout=timeout_ms)
        elif action.expect_url is not None:
            await expect(page).to_have_url(_url_pattern(action.expect_url), timeout=timeout_ms)
        elif action.wait is not None:
            await page.wait_for_timeout(action.wait * 1000)
        elif action.screenshot is not None and ctx.browser is not None:
            await ctx.browser.named_screenshot(action.screenshot)
        else:  # pragma: no cover - the model admits nothing else
            raise AssertionError(kind)
    recorder = ctx.current
    if recorder is not None and ctx.browser is not None:
        await ctx.browser.step_ended(recorder)  # measured now, so the facts can be returned
    facts = recorder.facts if recorder is not None else None
    return facts if isinstance(facts, BrowserFacts) else BrowserFacts(page.url, None, 0)


def _url_pattern(expected: str) -> re.Pattern[str]:
    """`/shop` matches the page's path (any origin, query or fragment); a full URL must
    match whole."""
    if expected.startswith(("http://", "https://")):
        return re.compile(re.escape(expected) + r"/?$")
    return re.compile(r"^[a-z]+://[^/]+" + re.escape(expected) + r"/?(?:[?#].*)?$")


def _title(options: BrowserOptions, service: str) -> str:
    first = options.actions[0]
    if first.goto is not None:
        return f"browser {first.goto}"
    return f"browser {service}"


PROBE: Probe[BrowserOptions, BrowserFacts] = Probe(
    kind="browser",
    options=BrowserOptions,
    facts=BrowserFacts,
    run=run_browser,
    title=_title,
    summary="drive the service's pages in Chromium: goto, click, fill, expect_text, "
    "expect_url, screenshot, wait",
    templated=("actions",),
)
