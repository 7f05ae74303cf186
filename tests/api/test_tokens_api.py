"""API tokens and sign-in: device tokens for a password or a bound WeChat, personal access tokens from the
profile page, scopes, expiry, revocation, cookies never read, problem+json errors, per-token rate limits."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from matcher import tokens
from matcher.channels.wechat import forget_tokens
from matcher.models import ApiToken, AuditEntry, TokenKind, utcnow
from tests.api.conftest import ApiClient, make_token
from tests.conftest import PASSWORD
from tests.servers.wechat_gateway import WeChatGateway
from tests.web.test_auth import SAME_SITE

PROBLEM = "application/problem+json"


def test_without_a_token_every_endpoint_but_sign_in_is_401_problem(api, world):
    for path in ("me", "me/offers", "me/week", "me/profile", "demands", "schedules"):
        response = api.get(path)
        assert response.status_code == 401, path
        assert response.mimetype == PROBLEM
        assert response.json["status"] == 401 and response.json["detail"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert api.get("me", token="lnl_not-a-real-token").status_code == 401
    assert api.get("me", headers={"Authorization": "Basic dm9sX2E6eA=="}).status_code == 401


def test_password_sign_in_gives_a_device_token_with_the_roles_scopes(api, world, db):
    response = api.post("auth/token", json={"username": "vol_a", "password": PASSWORD, "device": "小米 13"})
    assert response.status_code == 201, response.json
    body = response.json
    assert body["token"].startswith("lnl_") and body["token_type"] == "bearer"
    assert body["kind"] == "device" and body["name"] == "小米 13"
    assert body["scopes"] == ["read", "offers", "profile"]
    assert body["user"]["username"] == "vol_a" and body["user"]["volunteer_id"]
    me = api.get("me", token=body["token"])
    assert me.status_code == 200 and me.json["token_scopes"] == ["read", "offers", "profile"]
    # Only the hash is stored; the secret appears nowhere in the database or the audit trail.
    row = db.session.get(ApiToken, body["id"])
    assert row.token_hash == tokens.hash_token(body["token"]) and body["token"] not in row.token_hash
    assert not any(body["token"] in str(e.details) for e in db.session.query(AuditEntry))
    assert api.get("me/tokens", token=body["token"]).json[0]["prefix"] == body["token"][:10]
    assert "token" not in api.get("me/tokens", token=body["token"]).json[0]


def test_wrong_password_is_401_naming_the_field_and_audited(api, world, db):
    response = api.post("auth/token", json={"username": "vol_a", "password": "not-it"})
    assert response.status_code == 401 and response.mimetype == PROBLEM
    assert response.json["field"] == "password"
    failed = db.session.query(AuditEntry).filter_by(action="login_failed").one()
    assert failed.details == {"username": "vol_a", "via": "api"}


def test_sign_in_body_is_checked_field_by_field(api, world):
    response = api.post("auth/token", json={"username": "vol_a", "pasword": PASSWORD})
    assert response.status_code == 422 and response.mimetype == PROBLEM
    assert set(response.json["errors"]) == {"password", "pasword"}
    assert api.post("auth/token", data="not json", content_type="application/json").status_code in (400, 422)


def test_a_locked_account_gets_no_token_and_its_tokens_stop(api, world, db):
    from matcher.accounts import lock_account

    secret = make_token(world["users"]["vol_a"])
    lock_account(world["users"]["admin"], world["users"]["vol_a"], "left the district")
    db.session.commit()
    assert api.get("me", token=secret).status_code == 401
    response = api.post("auth/token", json={"username": "vol_a", "password": PASSWORD})
    assert response.status_code == 403


def test_sign_in_guesses_are_throttled_like_the_page(make_app, world):
    app = make_app(RATELIMIT_ENABLED=True)
    client = ApiClient(app)
    codes = [client.post("auth/token", json={"username": "vol_a", "password": f"guess-{i}"}).status_code
             for i in range(7)]
    assert codes[0] == 401 and codes[-1] == 429
    refused = client.post("auth/token", json={"username": "vol_a", "password": PASSWORD})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0


def test_scopes_limit_what_a_token_may_do(api, world):
    read_only = make_token(world["users"]["vol_a"], kind=TokenKind.PERSONAL, scopes=["read"], days=30)
    offers = api.get("me/offers", token=read_only)
    assert offers.status_code == 200
    response = api.put("me/wechat", token=read_only, json={"code": "x"})
    assert response.status_code == 403 and "profile" in response.json["detail"]
    profile = api.get("me/profile", token=read_only)
    body = {k: v for k, v in profile.json.items() if k not in ("real_name", "home_area")}
    changed = api.put("me/profile", token=read_only, json=body, headers={"If-Match": profile.headers["ETag"]})
    assert changed.status_code == 403


def test_a_token_never_gets_more_than_the_role(world, db):
    from matcher.errors import ValidationError

    with pytest.raises(ValidationError) as refused:
        tokens.issue_token(world["users"]["vol_a"], kind=TokenKind.PERSONAL, name="x", scopes=["schedules"], days=30)
    assert "scopes" in refused.value.errors
    with pytest.raises(ValidationError) as refused:
        tokens.issue_token(world["users"]["coord"], kind=TokenKind.PERSONAL, name="x", scopes=["read"], days=7)
    assert "days" in refused.value.errors
    assert tokens.scopes_for(world["users"]["worker_a1"]) == ("read", "profile", "demands")
    assert "offers" not in tokens.scopes_for(world["users"]["coord"])


def test_expired_and_revoked_tokens_stop_working(api, world, db):
    secret = make_token(world["users"]["vol_a"])
    row = db.session.query(ApiToken).one()
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert api.get("me", token=secret).status_code == 401
    other = make_token(world["users"]["vol_a"])
    token_id = api.get("me", token=other).json and db.session.query(ApiToken).order_by(ApiToken.id.desc()).first().id
    assert api.delete(f"me/tokens/{token_id}", token=other).status_code == 204  # the phone signs itself out
    assert api.get("me", token=other).status_code == 401
    assert db.session.query(AuditEntry).filter_by(action="token_revoke").count() == 1


def test_someone_elses_token_cannot_be_revoked(api, world, db):
    mine = make_token(world["users"]["vol_a"])
    theirs_secret = make_token(world["users"]["vol_b"])
    theirs = db.session.query(ApiToken).filter(ApiToken.user_id == world["users"]["vol_b"].id).one()
    assert api.delete(f"me/tokens/{theirs.id}", token=mine).status_code == 404
    assert api.get("me", token=theirs_secret).status_code == 200


def test_a_password_change_signs_the_phones_out_but_keeps_personal_tokens(api, world, db):
    from matcher.accounts import set_password

    device = make_token(world["users"]["vol_a"])
    personal = make_token(world["users"]["vol_a"], kind=TokenKind.PERSONAL, scopes=["read"], days=90)
    set_password(world["users"]["vol_a"], "a-new-long-passphrase-9")
    db.session.commit()
    assert api.get("me", token=device).status_code == 401
    assert api.get("me", token=personal).status_code == 200


def test_cookies_are_never_read_and_no_csrf_token_is_asked(make_app, world):
    app = make_app(WTF_CSRF_ENABLED=True)
    browser = app.test_client()
    token_page = browser.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', token_page).group(1)
    browser.post("/login", data={"username": "vol_a", "password": PASSWORD, "csrf_token": csrf}, headers=SAME_SITE)
    assert browser.get("/me/offers").status_code == 200  # signed in with a cookie
    assert browser.get("/api/v1/me").status_code == 401  # the cookie does not open the API
    client = ApiClient(app)
    response = client.post("auth/token", json={"username": "vol_a", "password": PASSWORD})
    assert response.status_code == 201  # no CSRF token on a bearer API
    secret = response.json["token"]
    profile = client.get("me/profile", token=secret)
    assert profile.status_code == 200 and "Set-Cookie" not in profile.headers
    decline = client.post("me/offers/999999/decline", token=secret, json={"kind": "not_free"})
    assert decline.status_code == 404 and decline.mimetype == PROBLEM


def test_each_token_has_its_own_rate_limit(make_app, world):
    app = make_app(RATELIMIT_ENABLED=True, API_RATE_LIMIT="3 per minute")
    client = ApiClient(app)
    first = make_token(world["users"]["vol_a"])
    second = make_token(world["users"]["vol_b"])
    codes = [client.get("me", token=first).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = client.get("me", token=first)
    assert limited.mimetype == PROBLEM and int(limited.headers["Retry-After"]) > 0
    assert client.get("me", token=second).status_code == 200


def test_errors_speak_the_clients_language(api, world):
    chinese = api.get("me")
    english = api.get("me", headers={"Accept-Language": "en"})
    assert chinese.json["title"] != english.json["title"]
    assert "token" in english.json["detail"]


# --- WeChat ------------------------------------------------------------------------------------------


@pytest.fixture
def wx():
    forget_tokens()
    with WeChatGateway(app_id="wx-mini-1", secret="mini-secret") as gateway:
        yield gateway
    forget_tokens()


@pytest.fixture
def wechat_app(make_app, wx, world):
    app = make_app(WECHAT_API_URL=wx.url, WECHAT_APP_ID=wx.app_id, WECHAT_APP_SECRET=wx.secret,
                   WECHAT_TIMEOUT_SECONDS=2)
    return app


def test_bind_wechat_then_sign_in_with_it(wechat_app, wx, world, db):
    client = ApiClient(wechat_app)
    secret = make_token(world["users"]["vol_a"])
    unbound = client.post("auth/wechat", json={"code": wx.login_code("o-vol-a-0001")})
    assert unbound.status_code == 401 and unbound.json["field"] == "code"
    bound = client.put("me/wechat", token=secret, json={"code": wx.login_code("o-vol-a-0001")})
    assert bound.status_code == 200 and bound.json["wechat_bound"] is True
    signed_in = client.post("auth/wechat", json={"code": wx.login_code("o-vol-a-0001"), "device": "WeChat"})
    assert signed_in.status_code == 201
    assert client.get("me", token=signed_in.json["token"]).json["username"] == "vol_a"
    assert db.session.query(AuditEntry).filter_by(action="wechat_bind").count() == 1
    assert "o-vol-a-0001" not in str([e.details for e in db.session.query(AuditEntry)])


def test_a_used_or_foreign_code_is_refused_and_one_wechat_binds_one_person(wechat_app, wx, world):
    client = ApiClient(wechat_app)
    vol_a, vol_b = make_token(world["users"]["vol_a"]), make_token(world["users"]["vol_b"])
    code = wx.login_code("o-shared")
    assert client.put("me/wechat", token=vol_a, json={"code": code}).status_code == 200
    reused = client.put("me/wechat", token=vol_a, json={"code": code})
    assert reused.status_code == 400 and reused.json["field"] == "code"
    taken = client.put("me/wechat", token=vol_b, json={"code": wx.login_code("o-shared")})
    assert taken.status_code == 409
    assert client.delete("me/wechat", token=vol_a).status_code == 204
    assert client.put("me/wechat", token=vol_b, json={"code": wx.login_code("o-shared")}).status_code == 200


def test_wechat_down_is_503_not_500(make_app, world):
    app = make_app(WECHAT_API_URL="http://127.0.0.1:9", WECHAT_APP_ID="wx", WECHAT_APP_SECRET="s",
                   WECHAT_TIMEOUT_SECONDS=1)
    response = ApiClient(app).post("auth/wechat", json={"code": "abc"})
    assert response.status_code == 503 and response.mimetype == PROBLEM


def test_wechat_sign_in_off_when_not_configured(api, world):
    assert api.post("auth/wechat", json={"code": "abc"}).status_code == 503


# --- the profile page ---------------------------------------------------------------------------------


def test_profile_page_makes_lists_and_revokes_personal_tokens(client, auth, world, db, api):
    auth.login("coord")
    page = client.get("/account/tokens")
    assert page.status_code == 200 and b'name="scopes" value="records"' in page.data
    assert b'value="offers"' not in page.data  # a coordinator's token cannot answer offers
    made = client.post("/account/tokens", data={"name": "区平台", "scopes": ["read", "records"], "days": "180"})
    assert made.status_code == 200
    secret = re.search(r'id="token-secret">(lnl_[^<]+)<', made.get_data(as_text=True)).group(1)
    assert made.headers["Cache-Control"] == "no-store"
    assert api.get("me", token=secret).json["token_scopes"] == ["read", "records"]
    listed = client.get("/account/tokens").get_data(as_text=True)
    assert "区平台" in listed and secret not in listed and secret[:10] in listed
    row = db.session.query(ApiToken).one()
    assert (row.expires_at - row.created_at).days == 180
    assert client.post(f"/account/tokens/{row.id}/revoke").status_code == 302
    assert api.get("me", token=secret).status_code == 401


def test_profile_page_names_what_is_wrong_and_makes_nothing(client, auth, world, db):
    auth.login("vol_a")
    bad = client.post("/account/tokens", data={"name": "", "scopes": ["schedules"], "days": "abc"})
    assert bad.status_code == 400
    assert db.session.query(ApiToken).count() == 0
    bad = client.post("/account/tokens", data={"name": "x", "scopes": ["read"], "days": "9999"})
    assert bad.status_code == 400 and db.session.query(ApiToken).count() == 0


def test_another_persons_token_cannot_be_revoked_on_the_page(client, auth, world, db):
    make_token(world["users"]["vol_b"])
    row = db.session.query(ApiToken).one()
    auth.login("vol_a")
    assert client.post(f"/account/tokens/{row.id}/revoke").status_code == 404
    db.session.refresh(row)
    assert row.revoked_at is None
