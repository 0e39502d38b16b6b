"""A YAML check and the Python check it stands for behave identically: same steps, same
statuses, same failures, same requests on the wire — run by the real runner against real
servers on 127.0.0.1."""

from __future__ import annotations

import json
import secrets
import socket
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from synth.checks.loader import load_checks
from synth.config import Settings
from synth.demo import ShopThread, run_in_thread
from synth.model import CheckSpec, FailureType, RunRequest, RunResult, Status
from synth.runner import Runner

if TYPE_CHECKING:
    from tests.integration.conftest import Exchange, StartServer

ENV = "test"

CHECKOUT_PY = """\
    import synth
    from synth import Flow


    @synth.check(service="shop", every="30s", timeout="10s", tags=["checkout"])
    async def checkout_py(flow: Flow) -> None:
        async with flow.step("log in"):
            r = await flow.post(
                "/api/login",
                json={"username": "demo", "password": flow.secret("shop_password")},
            )
            r.expect_status(200).expect_json("$.token", type="string")
            flow.vars["token"] = flow.mark_secret(r.json_path("$.token"))

        async with flow.step("list products"):
            r = await flow.get(
                "/api/products", headers={"Authorization": f"Bearer {flow.vars['token']}"}
            )
            r.expect_status(200)
            r.expect_header("content-type", contains="json")
            r.expect_json("$.count", gt=0)
            r.expect_json("$.items[0].price", type="number")
            r.expect_json("$.items[0].currency", "EUR")
            flow.vars["product_id"] = r.json_path("$.items[0].id")

        async with flow.step("add to cart"):
            r = await flow.post(
                "/api/cart/items",
                headers={"Authorization": f"Bearer {flow.vars['token']}"},
                json={"product_id": flow.vars["product_id"], "quantity": 2},
            )
            r.expect_status(201).expect_json("$.total", gt=0)

        async with flow.step("check out"):
            r = await flow.post(
                "/api/checkout", headers={"Authorization": f"Bearer {flow.vars['token']}"}
            )
            r.expect_status(201).expect_json("$.order.status", "confirmed")
            flow.vars["order_id"] = r.json_path("$.order.id")

        async with flow.step("order status"):
            r = await flow.get(
                f"/api/orders/{flow.vars['order_id']}",
                headers={"Authorization": f"Bearer {flow.vars['token']}"},
            )
            r.expect_status(200).expect_json("$.order.id", flow.vars["order_id"])
    """

CHECKOUT_YAML = """\
    name: checkout_yaml
    service: shop
    every: 30s
    timeout: 10s
    tags: [checkout]
    steps:
      - name: log in
        request:
          method: POST
          path: /api/login
          json: {username: demo, password: "${secrets.shop_password}"}
        expect:
          status: 200
          json: [{path: $.token, type: string}]
        capture: {token: $.token}
        secret_captures: [token]
      - name: list products
        request:
          path: /api/products
          headers: {Authorization: "Bearer ${token}"}
        expect:
          status: 200
          headers: {content-type: {contains: json}}
          json:
            - {path: $.count, gt: 0}
            - {path: "$.items[0].price", type: number}
            - {path: "$.items[0].currency", equals: EUR}
        capture: {product_id: "$.items[0].id"}
      - name: add to cart
        request:
          method: POST
          path: /api/cart/items
          headers: {Authorization: "Bearer ${token}"}
          json: {product_id: "${product_id}", quantity: 2}
        expect: {status: 201, json: [{path: $.total, gt: 0}]}
      - name: check out
        request:
          method: POST
          path: /api/checkout
          headers: {Authorization: "Bearer ${token}"}
        expect: {status: 201, json: [{path: $.order.status, equals: confirmed}]}
        capture: {order_id: $.order.id}
      - name: order status
        request:
          path: /api/orders/${order_id}
          headers: {Authorization: "Bearer ${token}"}
        expect: {status: 200, json: [{path: $.order.id, equals: "${order_id}"}]}
    """


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_pair(directory: Path, python: str, yaml_text: str) -> tuple[CheckSpec, CheckSpec]:
    write(directory / "flow.py", python)
    write(directory / "flow.yaml", yaml_text)
    loaded = load_checks([directory])
    assert loaded.problems == ()
    by_kind = {spec.kind: spec for spec in loaded.checks}
    return by_kind["python"], by_kind["yaml"]


def shop_settings(base_url: str, **env: Any) -> Settings:
    return Settings.model_validate(
        {
            "environments": {
                ENV: {
                    "services": {"shop": {"base_url": base_url}},
                    "secrets": {"shop_password": {"value": "demo-password"}},
                    **env,
                }
            },
            "runner": {"request_timeout": "3s"},
        }
    )


async def run(settings: Settings, spec: CheckSpec) -> RunResult:
    return await Runner(settings).run(RunRequest(check=spec, environment=ENV))


@dataclass(frozen=True)
class StepOutcome:
    """What must be the same between the two forms (the failure's wording included)."""

    name: str
    status: Status
    requests: int
    failure_type: FailureType | None
    message: str | None
    expected: str | None
    actual: str | None


def outcome(result: RunResult) -> tuple[Status, str | None, list[StepOutcome]]:
    steps = [
        StepOutcome(
            name=step.name,
            status=step.status,
            requests=len(step.requests),
            failure_type=step.failure.type if step.failure else None,
            message=step.failure.message if step.failure else None,
            expected=step.failure.expected if step.failure else None,
            actual=step.failure.actual if step.failure else None,
        )
        for step in result.steps
    ]
    return result.status, result.failed_step, steps


@pytest.fixture
def shop() -> Iterator[ShopThread]:
    with run_in_thread() as running:
        yield running


@pytest.fixture
def checkout_pair(tmp_path: Path) -> tuple[CheckSpec, CheckSpec]:
    return load_pair(tmp_path, CHECKOUT_PY, CHECKOUT_YAML)


def test_the_same_metadata(checkout_pair: tuple[CheckSpec, CheckSpec]) -> None:
    python, yaml_spec = checkout_pair
    same = ("service", "environments", "schedule", "timeout_s", "retries", "tags", "playbook")
    assert {f: getattr(python, f) for f in same} == {f: getattr(yaml_spec, f) for f in same}


async def test_passing_flow_is_identical(
    shop: ShopThread, checkout_pair: tuple[CheckSpec, CheckSpec]
) -> None:
    settings = shop_settings(shop.base_url)
    python, yaml_spec = checkout_pair
    py_result = await run(settings, python)
    yaml_result = await run(settings, yaml_spec)
    assert py_result.passed, py_result.failure
    assert outcome(yaml_result) == outcome(py_result)
    assert [s.name for s in yaml_result.steps] == [
        "log in",
        "list products",
        "add to cart",
        "check out",
        "order status",
    ]


@pytest.mark.parametrize(
    ("faults", "failed_step", "failure_type"),
    [
        pytest.param({"status": 503}, "log in", FailureType.HTTP_STATUS, id="all-503"),
        pytest.param(
            {"status": 503, "path_prefix": "/api/checkout"},
            "check out",
            FailureType.HTTP_STATUS,
            id="checkout-503",
        ),
        pytest.param({"schema_change": True}, "list products", FailureType.SCHEMA, id="schema"),
        pytest.param(
            {"expired_credentials": True, "path_prefix": "/api/cart"},
            "add to cart",
            FailureType.AUTH,
            id="expired-token",
        ),
    ],
)
async def test_failing_flow_is_identical(
    shop: ShopThread,
    checkout_pair: tuple[CheckSpec, CheckSpec],
    faults: dict[str, Any],
    failed_step: str,
    failure_type: FailureType,
) -> None:
    shop.set_faults(**faults)
    settings = shop_settings(shop.base_url)
    python, yaml_spec = checkout_pair
    py_result = await run(settings, python)
    yaml_result = await run(settings, yaml_spec)
    assert (py_result.failed_step, py_result.failure_type) == (failed_step, failure_type)
    assert outcome(yaml_result) == outcome(py_result)
    assert yaml_result.steps[-1].name == failed_step  # the flow stopped at the failure


async def test_wrong_secret_fails_both_as_auth(
    shop: ShopThread, checkout_pair: tuple[CheckSpec, CheckSpec]
) -> None:
    settings = shop_settings(shop.base_url, secrets={"shop_password": {"value": "not-it"}})
    py_result, yaml_result = [await run(settings, spec) for spec in checkout_pair]
    assert py_result.failure_type is FailureType.AUTH
    assert outcome(yaml_result) == outcome(py_result)
    assert "not-it" not in repr(yaml_result)


async def test_an_undefined_variable_fails_python_at_run_time_and_yaml_at_load(
    shop: ShopThread, tmp_path: Path
) -> None:
    # A Python check's variables are only known when it runs: the step fails as
    # script_error. A YAML check's are known from the file: `synth validate` (and the
    # agent at start) name the file and line instead, before anything runs.
    write(
        tmp_path / "flow.py",
        CHECKOUT_PY.replace("flow.vars['token']}\"}", "flow.vars['tokn']}\"}", 1),
    )
    write(tmp_path / "flow.yaml", CHECKOUT_YAML.replace('"Bearer ${token}"', '"Bearer ${tokn}"', 1))
    loaded = load_checks([tmp_path])
    [python] = loaded.checks
    [problem] = loaded.problems
    line = CHECKOUT_YAML.splitlines().index(
        next(x for x in CHECKOUT_YAML.splitlines() if "${token}" in x)
    )
    assert str(problem).startswith(f"{tmp_path / 'flow.yaml'}:{line + 1}: "), problem
    assert "${tokn} is used before any step captures it (captured by earlier steps: token)" in str(
        problem
    )
    result = await run(shop_settings(shop.base_url), python)
    assert result.failed_step == "list products"
    assert result.failure_type is FailureType.SCRIPT_ERROR
    assert [s.status for s in result.steps] == [Status.PASSED, Status.FAILED]
    assert result.steps[-1].requests == ()  # nothing was sent


@pytest.mark.parametrize("secret", [True, False])
async def test_secret_captures_are_redacted_from_every_output(
    http_server: StartServer, tmp_path: Path, secret: bool
) -> None:
    token = f"session-{secrets.token_hex(8)}"

    def login(ex: Exchange) -> None:
        ex.respond(200, {"session": token})

    def search(ex: Exchange) -> None:
        ex.respond(500, {"error": "broken", "query": ex.request.query})

    server = http_server({"/login": login, "/search": search})
    marker = "" if secret else "# "
    text = f"""\
        name: leak
        service: shop
        steps:
          - name: log in
            request: {{method: POST, path: /login}}
            capture: {{session: $.session}}
            {marker}secret_captures: [session]
          - name: search
            request: {{path: /search, params: {{q: "${{session}}"}}}}
        """
    write(tmp_path / "leak.yaml", text)
    [spec] = load_checks([tmp_path]).checks
    result = await run(shop_settings(server.base_url), spec)
    assert (result.failed_step, result.failure_type) == ("search", FailureType.HTTP_STATUS)
    assert server.requests[-1].query == f"q={token}"  # the value was really sent
    assert (token in repr(result)) is (not secret)
    if secret:
        assert result.failure is not None
        assert result.failure.url == f"{server.base_url}/search?q=***"


async def test_header_capture_and_templated_expectations(shop: ShopThread, tmp_path: Path) -> None:
    write(
        tmp_path / "server.yaml",
        """\
        name: server
        service: shop
        steps:
          - name: health
            request: {path: /health}
            expect: {json: [{path: $.status, equals: ok}]}
            capture: {server: {header: server}, version: $.version}
          - name: health again
            request: {path: "/health?env=${env}"}
            expect:
              headers: {server: "${server}"}
              json: [{path: $.version, equals: "${version}"}]
              body_contains: "${version}"
        """,
    )
    [spec] = load_checks([tmp_path]).checks
    result = await run(shop_settings(shop.base_url), spec)
    assert result.passed, result.failure
    assert result.steps[1].requests[0].url == f"{shop.base_url}/health?env={ENV}"

    shop.set_faults(status=500, path_prefix="/health")
    failed = await run(shop_settings(shop.base_url), spec)
    assert (failed.failed_step, failed.failure_type) == ("health", FailureType.HTTP_STATUS)
    assert failed.failure is not None
    assert failed.failure.expected == "2xx"  # status defaults to 2xx, like expect_status()


# -- the same bytes on the wire ---------------------------------------------------------------

WIRE_PY = """\
    import synth


    @synth.check(service="shop")
    async def wire_py(flow: synth.Flow) -> None:
        async with flow.step("seed"):
            r = await flow.get("/seed")
            r.expect_status(200)
            flow.vars["count"] = r.json_path("$.count")
            flow.vars["label"] = r.json_path("$.label")
        async with flow.step("json"):
            r = await flow.put(
                f"/items/{flow.vars['label']}",
                params={"env": flow.env, "n": flow.vars["count"]},
                headers={"X-Label": f"l-{flow.vars['label']}", "X-Api-Key": flow.secret("key")},
                json={"count": flow.vars["count"], "text": f"n={flow.vars['count']}",
                      "day": "2024-01-31", "nested": [{"label": flow.vars["label"]}],
                      "literal": "${not_a_reference}"},
            )
            r.expect_status(200)
        async with flow.step("form"):
            r = await flow.post("/form", data={"a": flow.vars["label"], "b": ["1", "2"]})
            r.expect_status(200)
        async with flow.step("body"):
            r = await flow.request(
                "PATCH", "/raw", content=f"raw {flow.vars['count']}",
                headers={"Content-Type": "text/plain"}, timeout="2s",
            )
            r.expect_status(200)
    """

WIRE_YAML = """\
    name: wire_yaml
    service: shop
    steps:
      - name: seed
        request: {path: /seed}
        expect: {status: 200}
        capture: {count: $.count, label: $.label}
      - name: json
        request:
          method: put
          path: /items/${label}
          params: {env: "${env}", n: "${count}"}
          headers: {X-Label: "l-${label}", X-Api-Key: "${secrets.key}"}
          json:
            count: "${count}"
            text: "n=${count}"
            day: 2024-01-31
            nested: [{label: "${label}"}]
            literal: "$${not_a_reference}"
        expect: {status: 200}
      - name: form
        request:
          method: POST
          path: /form
          form: {a: "${label}", b: ["1", "2"]}
        expect: {status: 200}
      - name: body
        request:
          method: PATCH
          path: /raw
          body: "raw ${count}"
          headers: {Content-Type: text/plain}
          timeout: 2s
        expect: {status: 200}
    """

WIRE_HEADERS = ("content-type", "x-label", "x-api-key", "content-length")


async def test_requests_on_the_wire_are_identical(http_server: StartServer, tmp_path: Path) -> None:
    def seed(ex: Exchange) -> None:
        ex.respond(200, {"count": 3, "label": "blue"})

    def ok(ex: Exchange) -> None:
        ex.respond(200, {"ok": True})

    server = http_server({"/seed": seed, "/items/blue": ok, "/form": ok, "/raw": ok})
    settings = Settings.model_validate(
        {
            "environments": {
                ENV: {
                    "services": {"shop": {"base_url": server.base_url}},
                    "secrets": {"key": {"value": "k-123456"}},
                }
            }
        }
    )
    python, yaml_spec = load_pair(tmp_path, WIRE_PY, WIRE_YAML)

    sent: dict[str, list[tuple[Any, ...]]] = {}
    for spec in (python, yaml_spec):
        before = len(server.requests)
        result = await run(settings, spec)
        assert result.passed, result.failure
        sent[spec.kind] = [
            (r.method, r.target, r.body, tuple(r.headers.get(h) for h in WIRE_HEADERS))
            for r in server.requests[before:]
        ]
    assert sent["yaml"] == sent["python"]
    json_request = sent["yaml"][1]
    assert json_request[1] == f"/items/blue?env={ENV}&n=3"
    assert json.loads(json_request[2]) == {
        "count": 3,
        "text": "n=3",
        "day": "2024-01-31",
        "nested": [{"label": "blue"}],
        "literal": "${not_a_reference}",
    }
    assert sent["yaml"][2][2] == b"a=blue&b=1&b=2"
    assert sent["yaml"][3][2] == b"raw 3"


# -- probes as steps ------------------------------------------------------------------------


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


TCP_PY = """\
    import synth


    @synth.check(service="shop")
    async def tcp_py(flow: synth.Flow) -> None:
        async with flow.step("db reachable"):
            await flow.tcp("127.0.0.1", PORT, timeout="2s")
        async with flow.step("shop port"):
            await flow.tcp()
    """

TCP_YAML = """\
    name: tcp_yaml
    service: shop
    steps:
      - name: db reachable
        tcp: {host: 127.0.0.1, port: PORT, timeout: 2s}
      - name: shop port
        tcp: {}
    """


@pytest.mark.parametrize("reachable", [True, False])
async def test_tcp_steps_are_identical(
    listening_port: int, closed_port: int, tmp_path: Path, reachable: bool
) -> None:
    port = str(listening_port if reachable else closed_port)
    python, yaml_spec = load_pair(
        tmp_path, TCP_PY.replace("PORT", port), TCP_YAML.replace("PORT", port)
    )
    settings = shop_settings(f"http://127.0.0.1:{listening_port}")
    py_result = await run(settings, python)
    yaml_result = await run(settings, yaml_spec)
    assert outcome(yaml_result) == outcome(py_result)
    # Timings differ run to run; the probe's other facts must match.
    facts = ("target", "address")
    assert [[s.details.get(f) for f in facts] for s in yaml_result.steps] == [
        [s.details.get(f) for f in facts] for s in py_result.steps
    ]
    if reachable:
        assert yaml_result.passed, yaml_result.failure
        assert [s.name for s in yaml_result.steps] == ["db reachable", "shop port"]
    else:
        assert (yaml_result.failed_step, yaml_result.failure_type) == (
            "db reachable",
            FailureType.CONNECT,
        )
