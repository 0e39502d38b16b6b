"""The demo shop: its flow, its contract and every runtime fault, over real sockets."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from synth.demo import Faults, ShopServer, ShopThread, run_in_thread

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TIMEOUT = httpx2.Timeout(2.0)


@pytest.fixture
def shop() -> Iterator[ShopThread]:
    with run_in_thread() as running:
        yield running


@pytest.fixture
def client(shop: ShopThread) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=shop.base_url, timeout=TIMEOUT) as c:
        yield c


def login(client: httpx2.Client) -> dict[str, str]:
    response = client.post("/api/login", json={"username": "demo", "password": "demo-password"})
    assert response.status_code == 200
    return {"Authorization": f"Bearer {response.json()['token']}"}


def timed_get(client: httpx2.Client, path: str, **kw: Any) -> tuple[httpx2.Response, float]:
    start = time.perf_counter()
    response = client.get(path, **kw)
    return response, time.perf_counter() - start


# -- the happy path ---------------------------------------------------------------------------


def test_full_flow(client: httpx2.Client) -> None:
    assert client.get("/health").json() == {"status": "ok", "version": "1.0.0"}
    auth = login(client)

    products = client.get("/api/products", headers=auth)
    assert products.status_code == 200
    assert products.headers["content-type"] == "application/json"
    body = products.json()
    assert body["count"] == len(body["items"]) >= 3
    assert body["items"][0] == {
        "id": "sku-1",
        "name": body["items"][0]["name"],
        "price": 12.5,
        "currency": "EUR",
        "in_stock": True,
    }
    assert client.get("/api/products/sku-2", headers=auth).json()["id"] == "sku-2"

    cart = client.post("/api/cart/items", headers=auth, json={"product_id": "sku-1", "quantity": 2})
    assert cart.status_code == 201
    assert cart.json()["items"] == [{"product_id": "sku-1", "quantity": 2, "unit_price": 12.5}]
    assert cart.json()["total"] == 25.0
    assert client.get("/api/cart", headers=auth).json()["total"] == 25.0

    checkout = client.post("/api/checkout", headers=auth)
    assert checkout.status_code == 201
    order = checkout.json()["order"]
    assert order["id"].startswith("ord-")
    assert (order["status"], order["total"], order["currency"]) == ("confirmed", 25.0, "EUR")
    assert client.get("/api/cart", headers=auth).json()["items"] == []

    status = client.get(f"/api/orders/{order['id']}", headers=auth)
    assert status.status_code == 200
    assert status.json()["order"]["id"] == order["id"]


def test_version_and_password_are_configurable() -> None:
    with (
        run_in_thread(version="2.3.4", password="s3cret") as shop,
        httpx2.Client(base_url=shop.base_url, timeout=TIMEOUT) as client,
    ):
        assert client.get("/health").json()["version"] == "2.3.4"
        ok = client.post("/api/login", json={"username": "demo", "password": "s3cret"})
        assert ok.status_code == 200


def test_traceparent_is_echoed_and_recorded(shop: ShopThread, client: httpx2.Client) -> None:
    response = client.get("/health", headers={"traceparent": TRACEPARENT})
    assert response.headers["x-received-traceparent"] == TRACEPARENT
    assert "x-received-traceparent" not in client.get("/health").headers
    method, path, headers = shop.requests[-2]
    assert (method, path, headers["traceparent"]) == ("GET", "/health", TRACEPARENT)


def test_keep_alive_reuses_one_connection(shop: ShopThread) -> None:
    with socket.create_connection(("127.0.0.1", shop.port), timeout=2) as sock:
        request = b"GET /health HTTP/1.1\r\nHost: shop\r\n\r\n"
        sock.sendall(request * 2)  # pipelined on one connection
        data = _read_until_count(sock, b'"status": "ok"', 2)
    assert data.count(b"HTTP/1.1 200 OK") == 2


# -- contract errors --------------------------------------------------------------------------


def test_auth_is_required(client: httpx2.Client) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        response = client.get("/api/products", headers=headers)
        assert response.status_code == 401
        assert response.json() == {"error": "missing or invalid token"}


def test_login_rejections(client: httpx2.Client) -> None:
    wrong = client.post("/api/login", json={"username": "demo", "password": "wrong"})
    assert (wrong.status_code, wrong.json()) == (401, {"error": "invalid credentials"})
    assert client.post("/api/login", content=b"{not json").status_code == 400
    assert client.post("/api/login", json={"username": "demo"}).status_code == 400


def test_cart_and_order_errors(client: httpx2.Client) -> None:
    auth = login(client)
    add = "/api/cart/items"
    assert client.post(add, headers=auth, json={"product_id": "sku-x"}).status_code == 404
    for quantity in (0, -1, "2", 1.5, True):
        bad = {"product_id": "sku-1", "quantity": quantity}
        assert client.post(add, headers=auth, json=bad).status_code == 422
    assert client.post("/api/checkout", headers=auth).status_code == 409
    assert client.get("/api/products/sku-x", headers=auth).status_code == 404
    assert client.get("/api/orders/ord-missing", headers=auth).status_code == 404


def test_unknown_route_and_wrong_method(client: httpx2.Client) -> None:
    missing = client.get("/nope")
    assert (missing.status_code, missing.json()) == (404, {"error": "not found"})
    wrong = client.delete("/api/products")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET"
    assert wrong.json() == {"error": "method not allowed"}


def test_oversized_body_is_413(client: httpx2.Client) -> None:
    response = client.post("/api/login", content=b"x" * (1024 * 1024 + 1))
    assert response.status_code == 413
    assert response.headers["connection"] == "close"


def test_malformed_request_is_400_and_closed(shop: ShopThread) -> None:
    with socket.create_connection(("127.0.0.1", shop.port), timeout=2) as sock:
        sock.sendall(b"NOT A VALID REQUEST LINE\r\n\r\n")
        data = _read_to_eof(sock)
    assert data.startswith(b"HTTP/1.1 400 ")
    assert b"Connection: close" in data


# -- faults -----------------------------------------------------------------------------------


def test_latency_is_added(shop: ShopThread, client: httpx2.Client) -> None:
    _, baseline = timed_get(client, "/health")
    shop.set_faults(latency_ms=300, path_prefix="/health")
    response, slowed = timed_get(client, "/health")
    assert response.status_code == 200
    assert slowed >= 0.3
    assert slowed - baseline >= 0.25


def test_forced_status(shop: ShopThread, client: httpx2.Client) -> None:
    auth = login(client)
    shop.set_faults(status=503)
    response = client.get("/api/products", headers=auth)
    assert response.status_code == 503
    assert response.json() == {"error": "service unavailable"}
    assert client.get("/health").status_code == 200  # health is spared by default


def test_error_rate(shop: ShopThread, client: httpx2.Client) -> None:
    auth = login(client)
    shop.set_faults(error_rate=1.0)
    assert {client.get("/api/products", headers=auth).status_code for _ in range(5)} == {500}


def test_error_rate_is_deterministic_with_a_seed() -> None:
    first, second = Faults(error_rate=0.5, seed=7), Faults(error_rate=0.5, seed=7)
    rolls = [first.roll_error() for _ in range(50)]
    assert rolls == [second.roll_error() for _ in range(50)]
    assert 0 < sum(rolls) < 50


def test_expired_credentials(shop: ShopThread, client: httpx2.Client) -> None:
    shop.set_faults(expired_credentials=True)
    auth = login(client)  # login still works
    response = client.get("/api/products", headers=auth)
    assert (response.status_code, response.json()) == (401, {"error": "token expired"})


def test_schema_change(shop: ShopThread, client: httpx2.Client) -> None:
    auth = login(client)
    shop.set_faults(schema_change=True)
    product = client.get("/api/products", headers=auth).json()["items"][0]
    assert product["price"] == "12.50"
    assert "in_stock" not in product
    client.post("/api/cart/items", headers=auth, json={"product_id": "sku-1", "quantity": 2})
    assert client.post("/api/checkout", headers=auth).json()["order"]["total"] == "25.00"


def test_corrupt_json(shop: ShopThread, client: httpx2.Client) -> None:
    auth = login(client)
    shop.set_faults(corrupt_json=True)
    response = client.get("/api/products", headers=auth)
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content) > 0
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_slow_body_trickles_after_prompt_headers(shop: ShopThread, client: httpx2.Client) -> None:
    rate = 100.0
    shop.set_faults(slow_body_bytes_per_s=rate, path_prefix="/health")
    start = time.perf_counter()
    with client.stream("GET", "/health") as response:
        headers_after = time.perf_counter() - start
        body = response.read()
    elapsed = time.perf_counter() - start
    assert int(response.headers["content-length"]) == len(body)
    assert json.loads(body)["status"] == "ok"
    expected = len(body) / rate
    assert elapsed >= expected * 0.9
    assert headers_after < expected / 2


def test_connection_reset(shop: ShopThread, client: httpx2.Client) -> None:
    shop.set_faults(connection_reset=True, path_prefix="/health")
    with pytest.raises((httpx2.ReadError, httpx2.RemoteProtocolError)):
        client.get("/health")
    assert shop.requests[-1].path == "/health"  # the request was read before the reset


def test_path_prefix_confines_faults(shop: ShopThread, client: httpx2.Client) -> None:
    auth = login(client)
    shop.set_faults(status=503, path_prefix="/api/checkout")
    assert client.get("/api/products", headers=auth).status_code == 200
    client.post("/api/cart/items", headers=auth, json={"product_id": "sku-1", "quantity": 1})
    assert client.post("/api/checkout", headers=auth).status_code == 503
    shop.clear_faults()
    assert client.post("/api/checkout", headers=auth).status_code == 201


# -- the admin API ----------------------------------------------------------------------------


def test_faults_admin_round_trip(shop: ShopThread, client: httpx2.Client) -> None:
    assert client.get("/_faults").json() == Faults().to_dict()
    wanted = {"status": 503, "latency_ms": 5, "path_prefix": "/api"}
    put = client.put("/_faults", json=wanted)
    assert put.status_code == 200
    current = client.get("/_faults").json()  # the admin API itself is never faulted
    assert {key: current[key] for key in wanted} == wanted
    assert shop.server.faults.status == 503
    assert client.delete("/_faults").json() == Faults().to_dict()
    assert shop.server.faults == Faults()


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"explode": True}, "explode"),
        ({"status": "503"}, "status"),
        ({"error_rate": 2}, "error_rate"),
        ({"corrupt_json": 1}, "corrupt_json"),
        ([1, 2], "JSON object"),
    ],
)
def test_faults_admin_rejects_bad_input(client: httpx2.Client, body: object, named: str) -> None:
    response = client.put("/_faults", json=body)
    assert response.status_code == 400
    assert named in response.json()["error"]


def test_set_faults_validates_in_the_caller(shop: ShopThread) -> None:
    with pytest.raises(ValueError, match="bogus"):
        shop.set_faults(bogus=1)


# -- in-process use ---------------------------------------------------------------------------


async def test_server_runs_on_the_callers_loop() -> None:
    async with ShopServer(version="9.9.9") as server, httpx2.AsyncClient(timeout=TIMEOUT) as c:
        response = await c.get(f"{server.base_url}/health")
        assert response.json()["version"] == "9.9.9"
        assert server.base_url == f"http://127.0.0.1:{server.port}"


# -- helpers ----------------------------------------------------------------------------------


def _read_to_eof(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _read_until_count(sock: socket.socket, marker: bytes, count: int) -> bytes:
    data = b""
    while data.count(marker) < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data
