"""The demo shop's web front end over real sockets: pages, script, the `broken_js` fault and
the request record browser checks assert traceparent on. No browser: the HTML is parsed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser

import httpx2
import pytest

from synth.demo import ShopThread, run_in_thread

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TIMEOUT = httpx2.Timeout(2.0)
HTML = "text/html; charset=utf-8"


@pytest.fixture
def shop() -> Iterator[ShopThread]:
    with run_in_thread() as running:
        yield running


@pytest.fixture
def client(shop: ShopThread) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=shop.base_url, timeout=TIMEOUT) as c:
        yield c


@dataclass
class Element:
    tag: str
    attrs: dict[str, str | None]
    text: str = ""


class Page(HTMLParser):
    """Every element of a document with its attributes and its own direct text."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[Element] = []
        self._open: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs))
        self.elements.append(element)
        if tag not in ("input", "meta", "link"):
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        while self._open and self._open.pop().tag != tag:
            pass

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1].text += data

    def find(self, tag: str, **attrs: str | None) -> list[Element]:
        return [
            e
            for e in self.elements
            if e.tag == tag and all(e.attrs.get(k.rstrip("_")) == v for k, v in attrs.items())
        ]

    def one(self, tag: str, **attrs: str | None) -> Element:
        found = self.find(tag, **attrs)
        assert len(found) == 1, (tag, attrs, found)
        return found[0]


def wired_checkout_id(script: str) -> str:
    """The element id the script attaches the checkout click handler to."""
    wired = re.findall(
        r'getElementById\("([^"]+)"\)\.addEventListener\("click", checkout\)', script
    )
    assert len(wired) == 1, wired
    return str(wired[0])


def parse(response: httpx2.Response) -> Page:
    assert response.status_code == 200
    assert response.headers["content-type"] == HTML
    page = Page()
    page.feed(response.text)
    page.close()
    return page


def test_login_page_has_the_form(client: httpx2.Client) -> None:
    page = parse(client.get("/"))
    assert page.one("label", for_="email").text == "Email"
    assert page.one("label", for_="password").text == "Password"
    email = page.one("input", id="email")
    assert email.attrs["name"] == "email"
    assert email.attrs.get("type") in (None, "text")
    password = page.one("input", id="password")
    assert (password.attrs["name"], password.attrs["type"]) == ("password", "password")
    assert page.one("button", type="submit").text == "Log in"
    assert page.one("p", role="alert").attrs["id"] == "login-error"
    assert page.one("form").attrs["method"] == "post"  # without JS, no password in a URL
    assert page.one("script").attrs["src"] == "/static/shop.js"


def test_shop_page_has_products_cart_and_checkout(client: httpx2.Client) -> None:
    page = parse(client.get("/shop"))
    assert page.one("h1").text == "Products"
    assert page.one("ul", id="products").attrs["aria-label"] == "Products"
    assert page.one("p", id="cart-count").text == "Cart: 0 items"
    assert page.one("button", id="checkout").text == "Checkout"
    # One status and one alert, so `role: status` / `role: alert` name a single element.
    assert page.one("p", role="status").attrs["id"] == "order-status"
    assert page.one("p", role="alert").attrs["id"] == "shop-error"
    assert page.one("script").attrs["src"] == "/static/shop.js"


def test_pages_load_nothing_from_elsewhere(client: httpx2.Client) -> None:
    for path in ("/", "/shop"):
        response = client.get(path)
        page = parse(response)
        urls = [e.attrs.get(a) for e in page.elements for a in ("src", "href", "action")]
        assert all(url.startswith("/") for url in urls if url is not None), urls
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/static/shop.js", "text/javascript; charset=utf-8"),
        ("/static/shop.css", "text/css; charset=utf-8"),
        ("/static/favicon.svg", "image/svg+xml"),
    ],
)
def test_assets_are_served(client: httpx2.Client, path: str, content_type: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content
    assert "https://" not in response.text


def test_script_calls_the_json_api(client: httpx2.Client) -> None:
    script = client.get("/static/shop.js").text
    for needle in (
        "fetch(path, init)",
        '"/api/login"',
        '"/api/products"',
        '"/api/cart/items"',
        '"/api/checkout"',
        "sessionStorage.setItem",
        'window.location.assign("/shop")',
        '"Order confirmed: "',
        '"Login failed: "',
        '" failed: "',
        '"Checkout"',
        '"Add " + product.name + " to cart"',
    ):
        assert needle in script, needle


def test_unknown_asset_and_wrong_method(client: httpx2.Client) -> None:
    assert client.get("/static/nope.js").status_code == 404
    posted = client.post("/", data={"email": "demo", "password": "x"})
    assert (posted.status_code, posted.headers["allow"]) == (405, "GET")


def test_broken_js_breaks_the_checkout_wiring(shop: ShopThread, client: httpx2.Client) -> None:
    healthy = client.get("/static/shop.js").text
    assert client.put("/_faults", json={"broken_js": True}).json()["broken_js"] is True
    broken = client.get("/static/shop.js")
    assert broken.status_code == 200
    assert broken.headers["content-type"] == "text/javascript; charset=utf-8"
    assert broken.text != healthy
    # The broken script wires Checkout's click by an id the product page does not have:
    # null, so a TypeError escapes on load and the button never works.
    assert wired_checkout_id(healthy) == "checkout"
    assert not parse(client.get("/shop")).find("button", id=wired_checkout_id(broken.text))
    # The API is untouched: only a browser can see this fault.
    login = client.post("/api/login", json={"username": "demo", "password": "demo-password"})
    assert login.status_code == 200
    client.delete("/_faults")
    assert client.get("/static/shop.js").text == healthy


def test_broken_js_is_confined_by_path_prefix(shop: ShopThread, client: httpx2.Client) -> None:
    healthy = client.get("/static/shop.js").text
    shop.set_faults(broken_js=True, path_prefix="/api")
    assert client.get("/static/shop.js").text == healthy
    shop.set_faults(broken_js=True, path_prefix="/static")
    assert client.get("/static/shop.js").text != healthy


def test_json_faults_leave_pages_whole(shop: ShopThread, client: httpx2.Client) -> None:
    healthy = client.get("/shop").text
    shop.set_faults(corrupt_json=True, schema_change=True, type_change="items[].price")
    assert client.get("/shop").text == healthy
    assert client.get("/static/shop.js").text.endswith("})();\n")
    shop.set_faults(status=503)  # the whole site is down, pages included
    assert client.get("/shop").status_code == 503


def test_requests_record_page_and_fetch_headers(shop: ShopThread, client: httpx2.Client) -> None:
    headers = {"traceparent": TRACEPARENT, "sec-fetch-mode": "navigate"}
    page = client.get("/shop", headers=headers)
    assert (page.status_code, page.headers["content-type"]) == (200, HTML)
    assert page.headers["x-received-traceparent"] == TRACEPARENT
    fetched = client.post(
        "/api/login",
        json={"username": "demo", "password": "demo-password"},
        headers={"traceparent": TRACEPARENT, "sec-fetch-mode": "cors"},
    )
    assert fetched.status_code == 200
    document, call = shop.requests[-2:]
    assert (document.method, document.path) == ("GET", "/shop")
    assert document.headers["traceparent"] == TRACEPARENT
    assert document.headers["sec-fetch-mode"] == "navigate"
    assert (call.method, call.path) == ("POST", "/api/login")
    assert call.headers["traceparent"] == TRACEPARENT
    assert call.headers["content-type"] == "application/json"
