"""The shop's money path: log in, browse, add to cart, check out, see the order.

Copy this file as a starting point for your own user flows.
"""

from pydantic import BaseModel

import synth
from synth import Flow


class Product(BaseModel):
    id: str
    name: str
    price: float
    currency: str
    in_stock: bool


class ProductList(BaseModel):
    items: list[Product]
    count: int


@synth.check(
    service="shop",
    every="30s",
    timeout="20s",
    retries=1,
    tags=["checkout", "critical"],
    runbook="https://runbooks.example.com/shop/checkout",
)
async def checkout(flow: Flow) -> None:
    """A customer can log in, add a product to the cart and place an order."""
    async with flow.step("log in"):
        r = await flow.post(
            "/api/login",
            json={"username": "demo", "password": flow.secret("shop_password")},
        )
        r.expect_status(200).expect_json("$.token", type="string")
        token = flow.mark_secret(r.json_path("$.token"))
        auth = {"Authorization": f"Bearer {token}"}

    async with flow.step("list products"):
        r = await flow.get("/api/products", headers=auth)
        r.expect_status(200).expect_latency("1s")
        products = r.validated(ProductList)
        in_stock = [p for p in products.items if p.in_stock]
        assert in_stock, "no product in stock"

    async with flow.step("add to cart"):
        r = await flow.post(
            "/api/cart/items", headers=auth, json={"product_id": in_stock[0].id, "quantity": 2}
        )
        r.expect_status(201).expect_json("$.total", gt=0)

    async with flow.step("check out"):
        r = await flow.post("/api/checkout", headers=auth)
        r.expect_status(201).expect_json("$.order.status", "confirmed")
        r.expect_json("$.order.total", type="number")
        order_id = r.json_path("$.order.id")

    async with flow.step("order status"):
        r = await flow.get(f"/api/orders/{order_id}", headers=auth)
        r.expect_status(200).expect_json("$.order.id", order_id)
