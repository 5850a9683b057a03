"""A fake population-register adapter for the tests, served on 127.0.0.1: `POST /citizens/verify` with
`{"id_number", "full_name"}` answers `{"match": bool, "address": str | null}` from its own small register.

`mode` makes it misbehave like a real one on a bad day: "error" answers 500, "slow" answers after `delay`
seconds (longer than the connector's timeout in the tests), "drip" sends its answer one byte every `delay`
seconds (each read is quick, the whole answer is not). Every request it got is in `requests`, with its
`Idempotency-Key` header in `keys`.
"""

from __future__ import annotations

import threading
import time

from flask import Flask, Response, jsonify, request
from werkzeug.serving import make_server

REGISTER = {"001099001234": ("Trần Văn Bình", "Phường Bến Nghé, Quận 1, TP. Hồ Chí Minh")}


class FakeRegister:
    def __init__(self):
        self.mode = "ok"
        self.delay = 2.0
        self.requests: list[dict] = []
        self.keys: list[str | None] = []
        app = Flask("fake-register")

        @app.post("/citizens/verify")
        def verify():
            body = request.get_json(force=True)
            self.requests.append(body)
            self.keys.append(request.headers.get("Idempotency-Key"))
            if self.mode == "drip":

                def drip():
                    for byte in b'{"match": true, "address": "' + b"x" * 200 + b'"}':
                        time.sleep(self.delay)
                        yield bytes([byte])

                return Response(drip(), mimetype="application/json")
            if self.mode == "error":
                return jsonify({"error": "register unavailable"}), 500
            if self.mode == "slow":
                time.sleep(self.delay)
            person = REGISTER.get(body.get("id_number"))
            match = person is not None and person[0] == body.get("full_name")
            return jsonify({"match": match, "address": person[1] if match else None})

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="fake-register", daemon=True)

    def start(self) -> FakeRegister:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self._thread.join(10)
