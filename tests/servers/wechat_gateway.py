"""A local WeChat API: a real HTTP server on 127.0.0.1 that plays api.weixin.qq.com for subscription messages.

It issues access tokens and checks them on every send with its own code, checks each message as WeChat
does (a known template, non-empty fields within their type's length), records what it takes, and can
be told to misbehave:

    with WeChatGateway(app_id="wx1", secret="s", push_token="t") as wx:   # started on a free port
        wx.url                          # http://127.0.0.1:PORT (WECHAT_API_URL)
        wx.tokens_issued                # how many access tokens it handed out
        wx.expire_tokens()              # every token issued so far answers 42001 from now on
        wx.answer_next(40001)           # the next send answers errcode 40001 (or -1, 45009, 47003, ...)
        wx.fail_next(500, times=2)      # the next two sends answer HTTP 500
        wx.refuse(openid)               # sends to that openid answer 43101 (the user did not subscribe)
        wx.delay = 2.0                  # answer sends only after 2 s (timeouts)
        wx.messages                     # what it took: touser, template_id, page, data, ..., msgid
        wx.post_event(app_url, wx.sent_event(msgid))   # push a signed event to the application, as WeChat does

The push signature (sha1 of the sorted token, timestamp and nonce) is written here again on purpose,
so a test proves the application checks it as WeChat computes it.

Manual runs: `python -m tests.servers.wechat_gateway --port 9098` prints each message it takes, with
the openid masked (set LINLI_WECHAT_API_URL=http://127.0.0.1:9098 and the app id and secret it prints).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.servers.base import LocalServer

TOKEN_PATH = "/cgi-bin/token"
SEND_PATH = "/cgi-bin/message/subscribe/send"
LOGIN_PATH = "/sns/jscode2session"
LIMITS = {"thing": 20, "name": 10, "phrase": 5, "phone_number": 17, "car_number": 8, "symbol": 5}
STATES = {"formal", "trial", "developer"}


def push_signature(token: str, timestamp: str, nonce: str) -> str:
    """WeChat's scheme, written here again on purpose: hex SHA-1 of the three values sorted and joined."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode("utf-8")).hexdigest()


def mask(openid: str) -> str:
    return "…" + openid[-4:] if len(openid) > 4 else "****"


class WeChatGateway(LocalServer):
    """The WeChat API; start() / stop(), or use it as a context manager."""

    PATH = ""
    THREAD_NAME = "wechat-gateway"

    def __init__(self, app_id: str = "wx-test-app", secret: str = "test-app-secret", *,
                 push_token: str = "test-push-token", templates: set[str] | None = None, expires_in: int = 7200,
                 host: str = "127.0.0.1", port: int = 0, echo: bool = False) -> None:
        self.app_id, self.secret, self.push_token = app_id, secret, push_token
        self.templates = templates          # known template ids (None: any)
        self.expires_in = expires_in
        self.echo = echo
        self.messages: list[dict[str, Any]] = []   # messages taken
        self.requests: list[dict[str, Any]] = []   # every request: {"path", "query", "status", "errcode", "body"}
        self.tokens_issued = 0
        self.refused: dict[str, int] = {}          # openid -> errcode
        self.login_codes: dict[str, str] = {}      # wx.login() code -> openid (each works once)
        self.delay = 0.0
        self._valid: set[str] = set()
        self._expired: set[str] = set()
        self._script: list[tuple[int, int]] = []   # (HTTP status, errcode) for the next sends
        self._lock = threading.Lock()
        self._ids = itertools.count(3_000_000_000_000_000_001)
        self._listen(host, port)

    # ------------------------------------------------------------------ control

    def expire_tokens(self) -> None:
        """Every access token issued so far is expired (sends with it answer 42001)."""
        with self._lock:
            self._expired |= self._valid
            self._valid.clear()

    def answer_next(self, errcode: int, times: int = 1) -> None:
        """Answer the next `times` sends with HTTP 200 and `errcode` (-1, 40001, 45009, 47003, ...)."""
        with self._lock:
            self._script.extend([(200, errcode)] * times)

    def fail_next(self, status: int = 500, times: int = 1) -> None:
        """Answer the next `times` sends with HTTP `status` (500, 502, ...) and no JSON."""
        with self._lock:
            self._script.extend([(status, 0)] * times)

    def login_code(self, openid: str) -> str:
        """A fresh code as the mini-program's wx.login() gives it, for the person `openid` (works once)."""
        code = "wxcode-" + secrets.token_hex(8)
        with self._lock:
            self.login_codes[code] = openid
        return code

    def refuse(self, openid: str, errcode: int = 43101) -> None:
        """Answer `errcode` (43101: the user did not subscribe; 40003: no such openid) for sends to `openid`."""
        self.refused[openid] = errcode

    @property
    def sends(self) -> list[dict[str, Any]]:
        """Every request to the send endpoint, taken or not."""
        return [r for r in self.requests if r["path"] == SEND_PATH]

    # ------------------------------------------------------------------ pushes to the application
    def signed_query(self, *, timestamp: int | None = None, token: str | None = None,
                     **extra: str) -> dict[str, str]:
        """The query string WeChat puts on a push or a URL check (`token` to sign it wrongly on purpose)."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        nonce = str(secrets.randbelow(10**10))
        return {"signature": push_signature(self.push_token if token is None else token, stamp, nonce),
                "timestamp": stamp, "nonce": nonce, **extra}

    def _event(self, event: str, openid: str, items: Any) -> dict[str, Any]:
        return {"ToUserName": "gh_0123456789ab", "FromUserName": openid, "CreateTime": int(time.time()),
                "MsgType": "event", "Event": event, "List": items}

    def sent_event(self, msgid: Any, error_code: int = 0, status: str = "success", *, openid: str = "",
                   template_id: str = "") -> dict[str, Any]:
        """A `subscribe_msg_sent_event` for a message WeChat took (error_code 0: delivered)."""
        taken = next((m for m in self.messages if str(m["msgid"]) == str(msgid)), {})
        return self._event("subscribe_msg_sent_event", openid or taken.get("touser", "o-unknown"),
                           {"TemplateId": template_id or taken.get("template_id", "T"), "MsgID": str(msgid),
                            "ErrorCode": error_code, "ErrorStatus": status})

    def subscription_event(self, openid: str, choices: dict[str, str], *, popup: bool = True) -> dict[str, Any]:
        """The user accepted or rejected templates: {"<template id>": "accept" | "reject"} in the
        popup (`subscribe_msg_popup_event`) or in the client's settings (`subscribe_msg_change_event`)."""
        items = [{"TemplateId": t, "SubscribeStatusString": s, "PopupScene": "0"} for t, s in choices.items()]
        return self._event("subscribe_msg_popup_event" if popup else "subscribe_msg_change_event", openid, items)

    def post_event(self, app_url: str, payload: Any, **query: Any) -> tuple[int, str]:
        """POST a signed event push (JSON mode) to the application, as WeChat does; (status, text)."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
        target = f"{app_url}?{urllib.parse.urlencode(self.signed_query(**query))}"
        request = urllib.request.Request(target, data=body, headers={"Content-Type": "application/json"},
                                         method="POST")
        return self._call(request)

    def verify_url(self, app_url: str, echostr: str = "echo-4711", **query: Any) -> tuple[int, str]:
        """WeChat's server check when the push URL is saved: a signed GET that must echo `echostr`."""
        target = f"{app_url}?{urllib.parse.urlencode(self.signed_query(echostr=echostr, **query))}"
        return self._call(urllib.request.Request(target, method="GET"))

    @staticmethod
    def _call(request: urllib.request.Request) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    # ------------------------------------------------------------------ the server
    @staticmethod
    def _rid() -> str:
        return f" rid: {secrets.token_hex(4)}-{secrets.token_hex(4)}"

    def _token(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if query.get("grant_type") != "client_credential":
            return 200, {"errcode": 40002, "errmsg": "invalid grant_type" + self._rid()}
        if query.get("appid") != self.app_id:
            return 200, {"errcode": 40013, "errmsg": "invalid appid" + self._rid()}
        if query.get("secret") != self.secret:
            return 200, {"errcode": 40125, "errmsg": "invalid appsecret" + self._rid()}
        token = secrets.token_urlsafe(96)
        with self._lock:
            self._valid.add(token)
            self.tokens_issued += 1
        return 200, {"access_token": token, "expires_in": self.expires_in}

    def _send(self, query: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        with self._lock:
            scripted = self._script.pop(0) if self._script else None
        if scripted is not None:
            status, code = scripted
            if status != 200:
                return status, {}
            words = {-1: "system error", 40001: "invalid credential, access_token is invalid or not latest",
                     45009: "reach max api daily quota limit", 45047: "out of send limit",
                     47003: "argument invalid!"}.get(code, "scripted answer")
            return 200, {"errcode": code, "errmsg": words + self._rid()}
        token = query.get("access_token", "")
        if token in self._expired:
            return 200, {"errcode": 42001, "errmsg": "access_token expired" + self._rid()}
        if token not in self._valid:
            return 200, {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid" + self._rid()}
        try:
            data = json.loads(body)
        except ValueError:
            return 200, {"errcode": 47001, "errmsg": "data format error" + self._rid()}
        if not isinstance(data, dict) or not isinstance(data.get("touser"), str) or not data["touser"]:
            return 200, {"errcode": 40003, "errmsg": "invalid openid" + self._rid()}
        if not isinstance(data.get("template_id"), str) or (
                self.templates is not None and data["template_id"] not in self.templates):
            return 200, {"errcode": 40037, "errmsg": "invalid template_id" + self._rid()}
        if data.get("miniprogram_state", "formal") not in STATES:
            return 200, {"errcode": 47003, "errmsg": "argument invalid! miniprogram_state" + self._rid()}
        problem = self._check_data(data.get("data"))
        if problem:
            return 200, {"errcode": 47003, "errmsg": f"argument invalid! {problem}" + self._rid()}
        if data["touser"] in self.refused:
            code = self.refused[data["touser"]]
            # The answer names the openid (the application must not keep or log it whole).
            words = "user refuse to accept the msg" if code == 43101 else "invalid openid"
            return 200, {"errcode": code, "errmsg": f"{words} touser {data['touser']}" + self._rid()}
        msgid = next(self._ids)
        with self._lock:
            self.messages.append({**data, "msgid": msgid, "access_token": token})
        if self.echo:
            print(f"WeChat to {mask(data['touser'])} {data['template_id']} page={data.get('page')} "
                  f"{json.dumps(data['data'], ensure_ascii=False)} msgid={msgid}", flush=True)
        return 200, {"errcode": 0, "errmsg": "ok", "msgid": msgid}

    @staticmethod
    def _check_data(data: Any) -> str | None:
        """What WeChat would say about the template data, or None when it is right."""
        if not isinstance(data, dict) or not data:
            return "data is empty"
        for name, item in data.items():
            value = item.get("value") if isinstance(item, dict) else None
            if not isinstance(value, str) or not value:
                return f"data.{name}.value is empty"
            limit = LIMITS.get(name.rstrip("0123456789"), 32)
            if len(value) > limit:
                return f"data.{name}.value exceeds limit {limit}"
            if "\n" in value:
                return f"data.{name}.value has a line break"
        return None

    def _login(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """code2Session: the app's id and secret and a code from wx.login() give the person's openid."""
        if query.get("appid") != self.app_id or query.get("secret") != self.secret:
            return 200, {"errcode": 40125, "errmsg": "invalid appsecret"}
        if query.get("grant_type") != "authorization_code":
            return 200, {"errcode": 40002, "errmsg": "invalid grant_type"}
        with self._lock:
            openid = self.login_codes.pop(query.get("js_code", ""), None)
        if openid is None:
            return 200, {"errcode": 40029, "errmsg": "invalid code"}
        return 200, {"openid": openid, "session_key": secrets.token_urlsafe(16)}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self, body: bytes) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parsed.query))
                if parsed.path == TOKEN_PATH and self.command == "GET":
                    status, answer = gateway._token(query)
                elif parsed.path == LOGIN_PATH and self.command == "GET":
                    status, answer = gateway._login(query)
                elif parsed.path == SEND_PATH and self.command == "POST":
                    status, answer = gateway._send(query, body)
                    if gateway.delay:
                        time.sleep(gateway.delay)
                else:
                    status, answer = 404, {"errcode": 404, "errmsg": "not found"}
                with gateway._lock:
                    gateway.requests.append({"path": parsed.path, "query": query, "status": status,
                                             "errcode": answer.get("errcode"), "body": body})
                payload = json.dumps(answer, ensure_ascii=False).encode() if answer else b"<html>error</html>"
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=utf-8" if answer else "text/html")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                    pass

            def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
                self._serve(b"")

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                self._serve(self.rfile.read(min(length, 1_000_000)))

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the tests read `requests`
                pass

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="A local WeChat API for manual runs.")
    parser.add_argument("--port", type=int, default=9098)
    parser.add_argument("--app-id", default="wx-demo-app")
    parser.add_argument("--secret", default="demo-app-secret")
    args = parser.parse_args()
    gateway = WeChatGateway(args.app_id, args.secret, port=args.port, echo=True).start()
    print(f"WeChat API on {gateway.url} (LINLI_WECHAT_API_URL), app id {args.app_id}, secret {args.secret}; "
          "Ctrl-C stops it", flush=True)
    gateway.serve_until_interrupted()


if __name__ == "__main__":
    main()
