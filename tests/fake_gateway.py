"""A fake payment gateway for the tests, served on 127.0.0.1, that signs like the real ones do: HMAC-SHA512
(hex) with the shared secret over the parameters sorted by name and URL-encoded (`a=1&b=x+y`), in
`secure_hash`. Written here on its own (urllib's `urlencode`), not with motcua's code, so a signing bug on
either side fails the tests.

- `GET /pay?…&secure_hash=` checks motcua's signature on the order, shows a payment page with one button
  ("Thanh toán") and remembers the order;
- `POST /pay/<order_id>` pays it: calls motcua's IPN URL server to server (the confirmation), then sends the
  browser back to the order's `return_url` with the same signed result;
- `confirmation(order, …)` builds signed IPN parameters for tests that post them themselves (replays,
  forged signatures, wrong amounts).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import threading
from urllib.parse import urlencode

import requests
from flask import Flask, abort, redirect, request
from werkzeug.serving import make_server


def gateway_sign(secret: str, params: dict) -> str:
    items = sorted((k, str(v)) for k, v in params.items() if k != "secure_hash" and str(v) != "")
    return hmac.new(secret.encode(), urlencode(items).encode(), hashlib.sha512).hexdigest()


class FakeGateway:
    def __init__(self, secret: str):
        self.secret = secret
        self.orders: dict[str, dict] = {}
        self.ipn_answers: list[tuple[int, dict]] = []
        self.app = self._make_app()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="fake-gateway", daemon=True)
        self._counter = 0

    def start(self) -> FakeGateway:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self._thread.join(10)

    def confirmation(self, order: dict, *, amount=None, response_code="00", secret=None) -> dict:
        self._counter += 1
        params = {
            "merchant": order["merchant"],
            "order_id": order["order_id"],
            "amount": str(order["amount"] if amount is None else amount),
            "response_code": response_code,
            "transaction_no": f"FG{self._counter:08d}",
            "bank_code": "NCB",
            "pay_date": "20260302101500",
        }
        params["secure_hash"] = gateway_sign(secret or self.secret, params)
        return params

    def _make_app(self) -> Flask:
        gw = self
        app = Flask("fake_gateway")

        @app.get("/pay")
        def pay_page():
            params = request.args.to_dict()
            given = params.get("secure_hash", "")
            if not hmac.compare_digest(given, gateway_sign(gw.secret, params)):
                abort(400, "bad signature from the merchant")
            gw.orders[params["order_id"]] = params
            amount = f"{int(params['amount']):,}".replace(",", ".")
            return (
                "<!doctype html><html lang='vi'><head><meta charset='utf-8'><title>Cổng thanh toán thử</title>"
                "<meta name='viewport' content='width=device-width, initial-scale=1'></head><body>"
                f"<h1>Cổng thanh toán thử nghiệm</h1><p id='order'>{html.escape(params['order_info'])}</p>"
                f"<p>Số tiền: <strong id='amount'>{amount} đ</strong></p>"
                f"<form method='post' action='/pay/{html.escape(params['order_id'])}'>"
                "<button id='pay' type='submit'>Thanh toán</button></form></body></html>"
            )

        @app.get("/favicon.ico")
        def favicon():
            return "", 204

        @app.post("/pay/<order_id>")
        def pay(order_id):
            order = gw.orders.get(order_id)
            if order is None:
                abort(404)
            result = gw.confirmation(order)
            r = requests.post(order["ipn_url"], data=result, timeout=10)
            gw.ipn_answers.append((r.status_code, r.json() if r.content else {}))
            return redirect(f"{order['return_url']}?{urlencode(result)}", code=303)

        return app
