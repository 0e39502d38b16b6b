"""Redirects are followed like curl -L and browsers do, each hop recorded; a loop or a
chain past `max_redirects` fails saying so; following can be turned off per request or
per check, in Python and YAML."""

from __future__ import annotations

from typing import TYPE_CHECKING

import synth
from synth.checks.yaml import parse_yaml_checks
from synth.model import FailureType, RunRequest, Status
from synth.runner import Runner

if TYPE_CHECKING:
    from tests.conftest import RunCheck, SettingsFor
    from tests.integration.conftest import Exchange, Route, StartServer


def redirect_to(location: str, status: int = 302) -> Route:
    def route(ex: Exchange) -> None:
        ex.respond(status, b"", headers={"Location": location})

    return route


def ok(ex: Exchange) -> None:
    ex.respond(200, {"method": ex.request.method, "body": ex.request.body.decode()})


def chain(n: int) -> dict[str, Route]:
    """/redirect/n → /redirect/n-1 → … → /get, as httpbin's /redirect/n."""
    routes: dict[str, Route] = {"/get": ok}
    for k in range(1, n + 1):
        routes[f"/redirect/{k}"] = redirect_to("/get" if k == 1 else f"/redirect/{k - 1}")
    return routes


async def test_redirect_chain_is_followed_and_every_hop_recorded(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    @synth.check(service="web", timeout="5s", retries=0)
    async def follow(flow: synth.Flow) -> None:
        async with flow.step("open"):
            (await flow.get("/redirect/3")).expect_status(200)

    server = http_server(chain(3))
    result = await run_check(settings_for(server.base_url), follow)

    assert result.status is Status.PASSED, result.failure
    requests = result.steps[0].requests
    assert [(r.method, r.url, r.status_code) for r in requests] == [
        ("GET", server.url("/redirect/3"), 302),
        ("GET", server.url("/redirect/2"), 302),
        ("GET", server.url("/redirect/1"), 302),
        ("GET", server.url("/get"), 200),
    ]
    assert all(r.timings.total_s > 0 for r in requests)
    assert len({r.span_id for r in requests}) == 4  # a span per hop
    assert len({r.trace_id for r in requests}) == 1
    paths = ["/redirect/3", "/redirect/2", "/redirect/1", "/get"]
    assert [r.path for r in server.requests] == paths


async def test_redirect_loop_fails_naming_the_loop(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    @synth.check(service="web", timeout="5s", retries=0)
    async def loop(flow: synth.Flow) -> None:
        async with flow.step("open"):
            (await flow.get("/a")).expect_status(200)

    server = http_server({"/a": redirect_to("/b"), "/b": redirect_to("/a")})
    result = await run_check(settings_for(server.base_url), loop)

    assert result.status is Status.FAILED
    failure = result.failure
    assert failure is not None
    assert failure.type is FailureType.HTTP_STATUS
    a, b = server.url("/a"), server.url("/b")
    assert failure.message == f"too many redirects (10): {a} → {b} → {a}"
    assert len(server.requests) == 11  # the first request and 10 redirects followed
    assert len(result.steps[0].requests) == 11


async def test_max_redirects_bounds_a_chain(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    @synth.check(service="web", timeout="5s", retries=0)
    async def short_leash(flow: synth.Flow) -> None:
        async with flow.step("open"):
            (await flow.get("/redirect/3", max_redirects=2)).expect_status(200)

    server = http_server(chain(3))
    result = await run_check(settings_for(server.base_url), short_leash)

    assert result.failure is not None
    assert result.failure.message.startswith("too many redirects (2): ")
    assert len(server.requests) == 3


async def test_following_off_per_request_and_per_check_lets_302_be_expected(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    @synth.check(service="web", timeout="5s", retries=0)
    async def per_request(flow: synth.Flow) -> None:
        async with flow.step("login redirects"):
            r = await flow.get("/redirect/1", follow_redirects=False)
            r.expect_status(302).expect_header("Location", "/get")

    @synth.check(service="web", timeout="5s", follow_redirects=False, retries=0)
    async def per_check(flow: synth.Flow) -> None:
        async with flow.step("login redirects"):
            (await flow.get("/redirect/1")).expect_status(302)

    server = http_server(chain(1))
    settings = settings_for(server.base_url)
    for check in (per_request, per_check):
        result = await run_check(settings, check)
        assert result.status is Status.PASSED, result.failure
        assert [r.status_code for r in result.steps[0].requests] == [302]
    assert [r.path for r in server.requests] == ["/redirect/1", "/redirect/1"]


async def test_post_becomes_get_on_303_and_stays_post_on_307(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    seen: dict[str, object] = {}

    @synth.check(service="web", timeout="5s", retries=0)
    async def submit(flow: synth.Flow) -> None:
        async with flow.step("submit 303"):
            seen["303"] = (await flow.post("/see-other", json={"a": 1})).expect_status(200).json()
        async with flow.step("submit 307"):
            seen["307"] = (await flow.post("/temporary", json={"a": 1})).expect_status(200).json()

    server = http_server(
        {"/see-other": redirect_to("/get", 303), "/temporary": redirect_to("/get", 307), "/get": ok}
    )
    result = await run_check(settings_for(server.base_url), submit)

    assert result.status is Status.PASSED, result.failure
    assert seen["303"] == {"method": "GET", "body": ""}
    assert seen["307"] == {"method": "POST", "body": '{"a": 1}'}


async def test_credentials_are_not_sent_to_another_origin(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    other = http_server({"/landing": ok})

    @synth.check(service="web", timeout="5s", retries=0)
    async def cross(flow: synth.Flow) -> None:
        async with flow.step("open"):
            headers = {"Authorization": "Bearer same-origin-only-token"}
            (await flow.get("/out", headers=headers)).expect_status(200)

    server = http_server({"/out": redirect_to(other.url("/landing"))})
    result = await run_check(settings_for(server.base_url), cross)

    assert result.status is Status.PASSED, result.failure
    assert server.requests[0].headers["authorization"] == "Bearer same-origin-only-token"
    assert "authorization" not in other.requests[0].headers


async def test_secret_in_a_location_header_is_redacted_in_every_hop(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    secret = "s3cr3t-redirect-token"

    @synth.check(service="web", timeout="5s", retries=0)
    async def login(flow: synth.Flow) -> None:
        flow.secret("token")
        async with flow.step("open"):
            (await flow.get("/start")).expect_status(201)

    server = http_server({"/start": redirect_to(f"/get?next={secret}"), "/get": ok})
    settings = settings_for(server.base_url, secrets={"token": {"value": secret}})
    result = await run_check(settings, login)

    assert result.failure is not None
    shown = repr(result.steps[0].requests) + repr(result.failure)
    assert secret not in shown
    assert server.url("/get?next=***") in shown


async def test_yaml_follow_redirects_and_max_redirects(
    http_server: StartServer, settings_for: SettingsFor
) -> None:
    server = http_server(chain(3))
    specs, problems = parse_yaml_checks(
        """\
checks:
  - name: follows
    service: web
    steps:
      - request: {path: /redirect/3}
        expect: {status: 200}
  - name: capped
    service: web
    steps:
      - request: {path: /redirect/3, max_redirects: 1}
        expect: {status: 200}
  - name: not-following
    service: web
    follow_redirects: false
    steps:
      - request: {path: /redirect/1}
        expect: {status: 302}
  - name: step-overrides-check
    service: web
    follow_redirects: false
    steps:
      - request: {path: /redirect/1, follow_redirects: true}
        expect: {status: 200}
""",
        "checks/redirects.yaml",
    )
    assert problems == []
    runner = Runner(settings_for(server.base_url))
    results = {
        spec.name: await runner.run(RunRequest(check=spec, environment="test")) for spec in specs
    }
    assert results["follows"].status is Status.PASSED, results["follows"].failure
    assert results["not-following"].status is Status.PASSED, results["not-following"].failure
    assert results["step-overrides-check"].status is Status.PASSED
    capped = results["capped"].failure
    assert capped is not None
    assert capped.message.startswith("too many redirects (1): ")


async def test_cookies_carry_through_a_run_and_its_redirects_but_not_to_the_next_run(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    def login(ex: Exchange) -> None:
        ex.respond(302, b"", headers={"Location": "/account", "Set-Cookie": "sid=abc123; Path=/"})

    def account(ex: Exchange) -> None:
        signed_in = "sid=abc123" in ex.request.headers.get("cookie", "")
        ex.respond(200 if signed_in else 401, {"signed_in": signed_in})

    @synth.check(service="web", timeout="5s", retries=0)
    async def session(flow: synth.Flow) -> None:
        async with flow.step("log in"):
            (await flow.post("/login", data={"user": "demo"})).expect_status(200)
        async with flow.step("account again"):
            (await flow.get("/account")).expect_status(200)

    @synth.check(service="web", timeout="5s", retries=0)
    async def fresh(flow: synth.Flow) -> None:
        async with flow.step("account"):
            (await flow.get("/account")).expect_status(401)

    server = http_server({"/login": login, "/account": account})
    settings = settings_for(server.base_url)
    first = await run_check(settings, session)
    assert first.status is Status.PASSED, first.failure
    second = await run_check(settings, fresh)
    assert second.status is Status.PASSED, second.failure
