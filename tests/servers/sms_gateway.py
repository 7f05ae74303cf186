"""A local SMS gateway: a real HTTP server on 127.0.0.1 that plays an Aliyun/Tencent-style provider.

It checks every request's signature with its own code (not the application's, so a test proves the
application signs as documented in `matcher/channels/sms.py` and `docs/operations.md`), records each
message it takes, and can be told to misbehave:

    with SmsGateway(access_key="k", secret="s") as gw:      # started on a free port
        gw.url                          # http://127.0.0.1:PORT/sms/send
        gw.fail_next(500, times=2)      # the next two requests answer 500 (or 429, ...)
        gw.refuse("+8613800000000")     # that number answers Code isv.MOBILE_NUMBER_ILLEGAL
        gw.delay = 2.0                  # answer only after 2 s (timeouts)
        gw.messages                     # what it took: phone, sign_name, template_id, params, out_id, biz_id
        gw.send_receipt(callback_url, gw.messages[0]["biz_id"])   # POST a signed delivery receipt

Manual runs (`make demo` style): `python -m tests.servers.sms_gateway --port 9099 --key demo --secret
demo-secret` prints each message it takes, with the phone masked.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.servers.base import LocalServer

PATH = "/sms/send"
BEIJING = timezone(timedelta(hours=8))


def signature(secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The documented scheme, written here again on purpose: hex HMAC-SHA256 over
    "<timestamp>\\n<nonce>\\n<raw body>" with the shared secret."""
    return hmac.new(secret.encode("utf-8"), f"{timestamp}\n{nonce}\n".encode() + body, hashlib.sha256).hexdigest()


def mask(phone: str) -> str:
    digits = phone[3:] if phone.startswith("+86") else phone.lstrip("+")
    return digits[:3] + "****" + digits[-4:] if len(digits) >= 8 else "****"


class SmsGateway(LocalServer):
    """The gateway; start() / stop(), or use it as a context manager."""

    PATH = PATH
    THREAD_NAME = "sms-gateway"

    def __init__(self, access_key: str = "test-key", secret: str = "test-secret", *, max_age: int = 300,
                 host: str = "127.0.0.1", port: int = 0, echo: bool = False) -> None:
        self.access_key, self.secret, self.max_age = access_key, secret, max_age
        self.echo = echo
        self.messages: list[dict[str, Any]] = []   # messages taken
        self.requests: list[dict[str, Any]] = []   # every request: {"status", "code", "body"}
        self.refused_numbers: dict[str, tuple[int, str]] = {}
        self.delay = 0.0
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._listen(host, port)

    # ------------------------------------------------------------------ control

    def fail_next(self, status: int = 500, times: int = 1) -> None:
        """Answer `status` (500, 503, 429, ...) to the next `times` requests, whatever they are."""
        with self._lock:
            self._failures.extend([status] * times)

    def refuse(self, phone: str, code: str = "isv.MOBILE_NUMBER_ILLEGAL", status: int = 200) -> None:
        """Answer `code` (with HTTP `status`, 200 as Aliyun does) for messages to `phone`."""
        self.refused_numbers[phone] = (status, code)

    # ------------------------------------------------------------------ receipts
    def receipt_request(self, items: list[dict[str, Any]], *, timestamp: int | None = None,
                        secret: str | None = None) -> tuple[bytes, dict[str, str]]:
        """A signed receipt callback's body and headers (`secret` to sign it wrongly on purpose)."""
        body = json.dumps(items, ensure_ascii=False).encode()
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        nonce = secrets.token_hex(16)
        return body, {"Content-Type": "application/json", "X-Sms-Access-Key": self.access_key,
                      "X-Sms-Timestamp": stamp, "X-Sms-Nonce": nonce,
                      "X-Sms-Signature": signature(self.secret if secret is None else secret, stamp, nonce, body)}

    def receipt(self, biz_id: str, delivered: bool = True, err_code: str = "", out_id: str = "") -> dict[str, Any]:
        """One receipt item, as the provider reports it (report time in Beijing time)."""
        return {"biz_id": biz_id, "out_id": out_id, "status": "DELIVERED" if delivered else "FAILED",
                "err_code": err_code or ("DELIVERED" if delivered else "MK:0001"),
                "report_time": datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S")}

    def send_receipt(self, callback_url: str, biz_id: str, delivered: bool = True, err_code: str = "",
                     out_id: str = "") -> int:
        """POST one signed receipt to the application, as the provider does; returns the HTTP status."""
        return self.post_receipts(callback_url, [self.receipt(biz_id, delivered, err_code, out_id)])

    def post_receipts(self, callback_url: str, items: list[dict[str, Any]]) -> int:
        body, headers = self.receipt_request(items)
        request = urllib.request.Request(callback_url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status
        except urllib.error.HTTPError as exc:
            return exc.code

    # ------------------------------------------------------------------ the server
    def _check(self, headers: Any, body: bytes) -> str | None:
        """None when the request is signed right, else the provider's error code."""
        key, stamp = headers.get("X-Sms-Access-Key"), headers.get("X-Sms-Timestamp")
        nonce, signed = headers.get("X-Sms-Nonce"), headers.get("X-Sms-Signature")
        if not (key and stamp and nonce and signed):
            return "MissingSignature"
        if key != self.access_key:
            return "InvalidAccessKeyId.NotFound"
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > self.max_age:
            return "SignatureNonceUsed.Stale"
        if not hmac.compare_digest(signed, signature(self.secret, stamp, nonce, body)):
            return "SignatureDoesNotMatch"
        return None

    def _answer(self, body: bytes, headers: Any) -> tuple[int, dict[str, Any]]:
        request_id = secrets.token_hex(8)
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            code = "Throttling" if failure == 429 else "ServiceUnavailable"
            return failure, {"Code": code, "Message": "try again later", "RequestId": request_id}
        problem = self._check(headers, body)
        if problem:
            return 403, {"Code": problem, "Message": "signature refused", "RequestId": request_id}
        try:
            data = json.loads(body)
        except ValueError:
            return 400, {"Code": "isv.INVALID_PARAMETERS", "Message": "not JSON", "RequestId": request_id}
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) and data.get(k)
                                                 for k in ("phone", "sign_name", "template_id", "out_id")) \
                or not isinstance(data.get("params"), dict):
            return 400, {"Code": "isv.INVALID_PARAMETERS", "Message": "missing fields", "RequestId": request_id}
        if not all(isinstance(v, str) for v in data["params"].values()):
            return 400, {"Code": "isv.INVALID_JSON_PARAM", "Message": "params must be text", "RequestId": request_id}
        if data["phone"] in self.refused_numbers:
            status, code = self.refused_numbers[data["phone"]]
            # Like real providers, the answer names the number (the application must not keep it whole).
            return status, {"Code": code, "Message": f"illegal mobile number {data['phone']}",
                            "RequestId": request_id}
        biz_id = f"{int(time.time())}^{next(self._ids)}"
        with self._lock:
            self.messages.append({**data, "biz_id": biz_id})
        if self.echo:
            print(f"SMS to {mask(data['phone'])} [{data['sign_name']}] {data['template_id']} "
                  f"{json.dumps(data['params'], ensure_ascii=False)} out_id={data['out_id']} biz_id={biz_id}",
                  flush=True)
        return 200, {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, 1_000_000))
                if self.path != PATH:
                    status, answer = 404, {"Code": "NotFound", "Message": self.path}
                else:
                    status, answer = gateway._answer(body, self.headers)
                with gateway._lock:
                    gateway.requests.append({"status": status, "code": answer.get("Code"), "body": body})
                if gateway.delay:
                    time.sleep(gateway.delay)
                payload = json.dumps(answer, ensure_ascii=False).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                    pass

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the tests read `requests`
                pass

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="A local SMS gateway for manual runs.")
    parser.add_argument("--port", type=int, default=9099)
    parser.add_argument("--key", default="demo-key")
    parser.add_argument("--secret", default="demo-secret")
    args = parser.parse_args()
    gateway = SmsGateway(args.key, args.secret, port=args.port, echo=True).start()
    print(f"SMS gateway on {gateway.url} (LINLI_SMS_GATEWAY_URL); Ctrl-C stops it", flush=True)
    gateway.serve_until_interrupted()


if __name__ == "__main__":
    main()
