"""The demo shop's web front end: a login page and a product page for browser checks.

Server-rendered HTML and one vanilla script that talks to the shop's JSON API with
`fetch()`; nothing is loaded from anywhere but the shop. The pages are what browser checks
target, so their texts, roles and labels are a contract (README, "The demo shop's web front
end"):

- `/`: `<label for=email>Email</label>`, `<label for=password>Password</label>`, the button
  "Log in"; a rejected login shows `role=alert` "Login failed: <error>".
- `/shop`: heading "Products", one button per product named "Add <product name> to cart",
  the cart count "Cart: N items", the button "Checkout"; an order shows `role=status`
  "Order confirmed: <order id>", a failed checkout `role=alert` "Checkout failed: <status>".

The `broken_js` fault serves a script with a front-end bug: on the product page it throws
an uncaught TypeError before the Checkout button is wired, so checkout never happens while
every API answers correctly.
"""

from __future__ import annotations

from synth.demo._http import Response, error

LOGIN_PATH = "/"
SHOP_PATH = "/shop"
SCRIPT_PATH = "/static/shop.js"
STYLE_PATH = "/static/shop.css"
ICON_PATH = "/static/favicon.svg"
TOKEN_KEY = "synth-demo-token"
"""The `sessionStorage` key that holds the bearer token between the two pages."""

HTML_TYPE = "text/html; charset=utf-8"
SCRIPT_TYPE = "text/javascript; charset=utf-8"
STYLE_TYPE = "text/css; charset=utf-8"
ICON_TYPE = "image/svg+xml"

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

_HEAD = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · demo shop</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/shop.css">
<script src="/static/shop.js" defer></script>
</head>
"""

LOGIN_HTML = (
    _HEAD.format(title="Log in")
    + """<body data-page="login">
<main>
<h1>Log in to the demo shop</h1>
<form id="login-form" method="post" novalidate>
<label for="email">Email</label>
<input id="email" name="email" autocomplete="username" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button>
</form>
<p id="login-error" role="alert" hidden></p>
</main>
</body>
</html>
"""
)

SHOP_HTML = (
    _HEAD.format(title="Products")
    + """<body data-page="shop">
<header>
<p id="cart-count" aria-live="polite">Cart: 0 items</p>
<a id="logout" href="/">Log out</a>
</header>
<main>
<h1>Products</h1>
<ul id="products" aria-label="Products"></ul>
<button type="button" id="checkout">Checkout</button>
<p id="order-status" role="status" hidden></p>
<p id="shop-error" role="alert" hidden></p>
</main>
</body>
</html>
"""
)

STYLE_CSS = """body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 40rem; }
form { display: grid; gap: 0.5rem; max-width: 20rem; }
header { display: flex; justify-content: space-between; }
ul { list-style: none; padding: 0; }
li { display: flex; gap: 1rem; align-items: center; padding: 0.25rem 0; }
li .name { flex: 1; }
[role="alert"] { color: #a00; }
[role="status"] { color: #060; }
"""

ICON_SVG = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">\
<circle cx="8" cy="8" r="7" fill="#640"/></svg>
"""

# The placeholder is the id the product page wires the Checkout button's click by: the real
# one, or (broken_js) a stale one, so `getElementById` gives null and wiring it throws.
_CHECKOUT_ID = "__CHECKOUT_BUTTON_ID__"
_SCRIPT_TEMPLATE = """"use strict";
// The demo shop's front end: the login page and the product page call the JSON API.
(() => {
  const TOKEN_KEY = "__TOKEN_KEY__";

  function show(element, text) {
    element.textContent = text;
    element.hidden = false;
  }

  function hide(element) {
    element.hidden = true;
    element.textContent = "";
  }

  // One API call: {status, ok, body} (body null when not JSON); throws on a network error.
  async function api(method, path, payload, token) {
    const headers = { Accept: "application/json" };
    if (payload !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = "Bearer " + token;
    const init = { method, headers };
    if (payload !== undefined) init.body = JSON.stringify(payload);
    const response = await fetch(path, init);
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    return { status: response.status, ok: response.ok, body };
  }

  function initLogin() {
    const form = document.getElementById("login-form");
    const alert = document.getElementById("login-error");
    const button = form.querySelector("button[type=submit]");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      hide(alert);
      button.disabled = true;
      try {
        const credentials = {
          username: form.elements.email.value,
          password: form.elements.password.value,
        };
        const answer = await api("POST", "/api/login", credentials);
        if (answer.ok && answer.body && typeof answer.body.token === "string") {
          sessionStorage.setItem(TOKEN_KEY, answer.body.token);
          window.location.assign("/shop");
          return;
        }
        const reason = answer.body && typeof answer.body.error === "string"
          ? answer.body.error : String(answer.status);
        show(alert, "Login failed: " + reason);
      } catch (_) {
        show(alert, "Login failed: network error");
      } finally {
        button.disabled = false;
      }
    });
  }

  function initShop() {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) {
      window.location.replace("/");
      return;
    }
    const list = document.getElementById("products");
    const count = document.getElementById("cart-count");
    const status = document.getElementById("order-status");
    const alert = document.getElementById("shop-error");
    const checkoutButton = document.getElementById("checkout");
    let pending = 0;

    // Checkout waits while products load or a cart update is in flight, so a click on it
    // always orders what the page shows (a browser check's click waits until it is enabled).
    function busy(delta) {
      pending += delta;
      checkoutButton.disabled = pending > 0;
    }

    function setCount(cart) {
      const items = cart && Array.isArray(cart.items) ? cart.items : [];
      const n = items.reduce((sum, item) => sum + (Number(item.quantity) || 0), 0);
      count.textContent = "Cart: " + n + (n === 1 ? " item" : " items");
    }

    function fail(what, answer) {
      hide(status);
      show(alert, what + " failed: " + answer);
    }

    function render(product) {
      const item = document.createElement("li");
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = product.name;
      const price = document.createElement("span");
      price.className = "price";
      price.textContent = Number(product.price).toFixed(2) + " " + product.currency;
      const add = document.createElement("button");
      add.type = "button";
      if (product.in_stock) {
        add.textContent = "Add to cart";
        add.setAttribute("aria-label", "Add " + product.name + " to cart");
        add.addEventListener("click", () => addToCart(product, add));
      } else {
        add.textContent = "Out of stock";
        add.setAttribute("aria-label", product.name + " is out of stock");
        add.disabled = true;
      }
      item.append(name, price, add);
      list.append(item);
    }

    async function load() {
      busy(1);
      try {
        const products = await api("GET", "/api/products", undefined, token);
        if (!products.ok || !products.body || !Array.isArray(products.body.items)) {
          fail("Loading products", products.ok ? "invalid response" : products.status);
          return;
        }
        products.body.items.forEach(render);
        const cart = await api("GET", "/api/cart", undefined, token);
        if (cart.ok) setCount(cart.body);
      } catch (_) {
        fail("Loading products", "network error");
      } finally {
        busy(-1);
      }
    }

    async function addToCart(product, button) {
      hide(alert);
      button.disabled = true;
      busy(1);
      try {
        const cart = await api("POST", "/api/cart/items",
          { product_id: product.id, quantity: 1 }, token);
        if (cart.ok) setCount(cart.body);
        else fail("Add to cart", cart.status);
      } catch (_) {
        fail("Add to cart", "network error");
      } finally {
        button.disabled = false;
        busy(-1);
      }
    }

    async function checkout() {
      hide(alert);
      hide(status);
      busy(1);
      try {
        const answer = await api("POST", "/api/checkout", undefined, token);
        const order = answer.body && answer.body.order;
        if (!answer.ok) {
          fail("Checkout", answer.status);
        } else if (!order || typeof order.id !== "string") {
          fail("Checkout", "invalid response");
        } else {
          show(status, "Order confirmed: " + order.id);
          setCount(null);
        }
      } catch (_) {
        fail("Checkout", "network error");
      } finally {
        busy(-1);
      }
    }

    document.getElementById("logout").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
    });
    load();
    document.getElementById("__CHECKOUT_BUTTON_ID__").addEventListener("click", checkout);
  }

  const page = document.body.dataset.page;
  if (page === "login") initLogin();
  else if (page === "shop") initShop();
})();
""".replace("__TOKEN_KEY__", TOKEN_KEY)

SCRIPT_JS = _SCRIPT_TEMPLATE.replace(_CHECKOUT_ID, "checkout")
BROKEN_SCRIPT_JS = _SCRIPT_TEMPLATE.replace(_CHECKOUT_ID, "checkout-button")
"""The `broken_js` script: a stale element id, so wiring Checkout throws a TypeError."""


def _asset(content: str, content_type: str, extra: dict[str, str] | None = None) -> Response:
    headers = {
        "Content-Type": content_type,
        "Cache-Control": "no-store",  # a fault switched on applies to the next page load
        "X-Content-Type-Options": "nosniff",
        **(extra or {}),
    }
    return Response(200, None, headers, content.encode())


def page(path: str) -> Response:
    """The HTML page for `path` (`/` or `/shop`)."""
    html = SHOP_HTML if path == SHOP_PATH else LOGIN_HTML
    return _asset(html, HTML_TYPE, {"Content-Security-Policy": _CSP})


def static(path: str, *, broken_js: bool = False) -> Response:
    """A file under `/static/`; a JSON 404 for any other name."""
    if path == SCRIPT_PATH:
        return _asset(BROKEN_SCRIPT_JS if broken_js else SCRIPT_JS, SCRIPT_TYPE)
    if path == STYLE_PATH:
        return _asset(STYLE_CSS, STYLE_TYPE)
    if path == ICON_PATH:
        return _asset(ICON_SVG, ICON_TYPE)
    return error(404, "not found")
