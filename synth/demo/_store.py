"""In-memory shop state: catalogue, sessions with their carts, and orders."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

CURRENCY = "EUR"
TOKEN_TTL_S = 3600
MAX_QUANTITY = 100
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class Product:
    """A catalogue entry; prices are exact decimals, rendered as JSON numbers."""

    id: str
    name: str
    price: Decimal
    in_stock: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "price": float(self.price),
            "currency": CURRENCY,
            "in_stock": self.in_stock,
        }


CATALOG: tuple[Product, ...] = (
    Product("sku-1", "Espresso beans 1 kg", Decimal("12.50")),
    Product("sku-2", "Ceramic mug", Decimal("8.00")),
    Product("sku-3", "Pour-over kettle", Decimal("24.99")),
    Product("sku-4", "Paper filters (100)", Decimal("3.75")),
    Product("sku-5", "Burr grinder", Decimal("59.00"), in_stock=False),
)


class StoreError(Exception):
    """A business-rule rejection, answered with `status` and `{"error": message}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Session:
    """A logged-in client: its bearer token and its cart (product id -> quantity)."""

    token: str
    issued_at: float
    cart_id: str
    cart: dict[str, int] = field(default_factory=dict)


class Store:
    """All mutable shop state; bounded so a long-running demo cannot grow without limit."""

    def __init__(self, max_sessions: int = 10_000, max_orders: int = 10_000) -> None:
        self.products = {p.id: p for p in CATALOG}
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._orders: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()
        self._max_sessions = max_sessions
        self._max_orders = max_orders

    def login(self) -> Session:
        """Open a session with a fresh random token."""
        session = Session(secrets.token_hex(16), time.monotonic(), f"cart-{secrets.token_hex(6)}")
        self._sessions[session.token] = session
        _trim(self._sessions, self._max_sessions)
        return session

    def session(self, token: str) -> Session | None:
        """The session for `token`, or None when the token was never issued (or evicted)."""
        return self._sessions.get(token)

    @staticmethod
    def expired(session: Session) -> bool:
        return time.monotonic() - session.issued_at > TOKEN_TTL_S

    def add_item(self, session: Session, product_id: object, quantity: object) -> None:
        """Add `quantity` of a product to the session's cart; StoreError when rejected."""
        if not isinstance(product_id, str):
            raise StoreError(422, "product_id must be a string")
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise StoreError(422, "quantity must be an integer")
        if not 1 <= quantity <= MAX_QUANTITY:
            raise StoreError(422, f"quantity must be between 1 and {MAX_QUANTITY}")
        product = self.products.get(product_id)
        if product is None:
            raise StoreError(404, f"unknown product {product_id!r}")
        if not product.in_stock:
            raise StoreError(409, f"product {product_id!r} is out of stock")
        session.cart[product_id] = session.cart.get(product_id, 0) + quantity

    def cart(self, session: Session) -> dict[str, Any]:
        """The session's cart as JSON."""
        items = self._lines(session.cart)
        return {
            "cart_id": session.cart_id,
            "items": items,
            "total": self._total(session.cart),
            "currency": CURRENCY,
        }

    def checkout(self, session: Session) -> dict[str, Any]:
        """Turn the cart into a confirmed order and empty it; StoreError 409 if empty."""
        if not session.cart:
            raise StoreError(409, "cart is empty")
        order_id = f"ord-{secrets.token_hex(6)}"
        order = {
            "id": order_id,
            "status": "confirmed",
            "total": self._total(session.cart),
            "currency": CURRENCY,
            "items": self._lines(session.cart),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self._orders[order_id] = (session.token, order)
        _trim(self._orders, self._max_orders)
        session.cart.clear()
        return order

    def order(self, session: Session, order_id: str) -> dict[str, Any] | None:
        """The order if it exists and belongs to this session."""
        entry = self._orders.get(order_id)
        if entry is None or entry[0] != session.token:
            return None
        return entry[1]

    def _lines(self, cart: dict[str, int]) -> list[dict[str, Any]]:
        return [
            {"product_id": pid, "quantity": qty, "unit_price": float(self.products[pid].price)}
            for pid, qty in cart.items()
        ]

    def _total(self, cart: dict[str, int]) -> float:
        total = sum((self.products[pid].price * qty for pid, qty in cart.items()), Decimal(0))
        return float(total.quantize(_CENT))


def _trim(mapping: OrderedDict[str, Any], limit: int) -> None:
    while len(mapping) > limit:
        mapping.popitem(last=False)
