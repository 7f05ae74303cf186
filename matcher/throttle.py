"""Throttling password guesses with counters that every web worker shares.

Every form that checks a password (sign-in, password change) counts each guess twice: per client
address and per account name (whether the account exists or not), each against its own limits
(`RATELIMIT_LOGIN`, `RATELIMIT_LOGIN_ACCOUNT`, Flask-Limiter's syntax: "10 per minute;50 per hour").

- A guess is counted *before* the password is checked, with one atomic increment per counter, so
  parallel requests in many workers cannot slip past the limit between a check and a write.
- Counters are fixed windows aligned to the clock (a minute counter restarts on the minute).
  Refused guesses count too: hammering keeps the longer windows closed.
- A right password takes its own guess back from the address counters (right passwords are not
  guesses, so many people behind one address can sign in) and clears the account's counters.
  It never clears the address counters, so one good account does not buy more guesses at others.
- The store: Redis (`REDIS_URL`) when configured, else the `throttle_counters` table (an
  `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` upsert, the same on SQLite and PostgreSQL) on
  its own connection, so a counted guess stays counted when the request rolls back. When Redis
  cannot be reached the database takes over (logged, and Redis is retried after `REDIS_RETRY`
  seconds): signing in never depends on Redis being up.
- Keys are SHA-256 hashes: neither the table nor Redis holds an address or a name.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from limits import parse_many
from sqlalchemy import delete, update
from sqlalchemy.dialects import postgresql, sqlite

from .db import db
from .models import ThrottleCounter
from .settings import setting

log = logging.getLogger(__name__)

REDIS_RETRY = 30  # seconds before Redis is tried again after it failed
PASSWORD_SCOPE = "password"


def now() -> float:
    """The clock windows are counted on (Unix seconds; tests stop it)."""
    return time.time()


@dataclass(frozen=True)
class Rule:
    """At most `amount` hits per `seconds`."""

    amount: int
    seconds: int


def parse_rules(text: str) -> tuple[Rule, ...]:
    """Rules from Flask-Limiter's notation, e.g. "10 per minute;50 per hour"."""
    return tuple(Rule(item.amount, item.get_expiry()) for item in parse_many(text))


@dataclass(frozen=True)
class Bucket:
    """One thing counted (an address, an account) under its rules."""

    key: str
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Verdict:
    """The outcome of counting one attempt."""

    allowed: bool
    retry_after: int = 0  # seconds until the attempt would be let through again
    first_refusal: bool = False  # the first attempt refused in its window (worth one audit entry)


def bucket(scope: str, kind: str, value: str, rules: Sequence[Rule]) -> Bucket:
    digest = hashlib.sha256(f"{scope}\x00{kind}\x00{value}".encode()).hexdigest()[:48]
    return Bucket(digest, tuple(rules))


def _counters(buckets: Iterable[Bucket], moment: float) -> list[tuple[str, int, Rule]]:
    """(counter key, window start, rule) of the current window of every rule of every bucket."""
    return [(f"{b.key}:{rule.seconds}", int(moment) - int(moment) % rule.seconds, rule)
            for b in buckets for rule in b.rules]


# -- the stores ---------------------------------------------------------------------------------


class DatabaseStore:
    """Counters in the `throttle_counters` table, on a connection of their own."""

    def incr(self, key: str, window: int, seconds: int) -> int:
        table = ThrottleCounter.__table__
        with db.engine.begin() as conn:
            dialect = conn.dialect.name
            if dialect not in ("sqlite", "postgresql"):
                raise RuntimeError(f"throttle counters need SQLite or PostgreSQL, not {dialect}")
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            stmt = insert(table).values(key=key, window_start=window, hits=1, expires_at=window + seconds)
            stmt = stmt.on_conflict_do_update(index_elements=[table.c.key, table.c.window_start],
                                              set_={"hits": table.c.hits + 1}).returning(table.c.hits)
            hits = conn.execute(stmt).scalar_one()
            if hits == 1:  # a new window began: forget the windows that are over
                conn.execute(delete(table).where(table.c.expires_at < int(now())))
        return hits

    def decr(self, key: str, window: int) -> None:
        table = ThrottleCounter.__table__
        with db.engine.begin() as conn:
            conn.execute(update(table).where(table.c.key == key, table.c.window_start == window,
                                             table.c.hits > 0).values(hits=table.c.hits - 1))

    def clear(self, key: str, window: int) -> None:
        table = ThrottleCounter.__table__
        with db.engine.begin() as conn:
            conn.execute(delete(table).where(table.c.key == key))


_DECR_IF_POSITIVE = """
local v = tonumber(redis.call('get', KEYS[1]) or '0')
if v > 0 then return redis.call('decr', KEYS[1]) end
return 0
"""


class RedisStore:
    """Counters in Redis: INCR and EXPIRE in one transaction; keys expire with their window."""

    def __init__(self, url: str, prefix: str):
        import redis

        self.client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        self.prefix = prefix

    def _name(self, key: str, window: int) -> str:
        return f"{self.prefix}:throttle:{key}:{window}"

    def incr(self, key: str, window: int, seconds: int) -> int:
        name = self._name(key, window)
        pipe = self.client.pipeline(transaction=True)
        pipe.incr(name)
        pipe.expire(name, seconds + 1)
        hits, _ = pipe.execute()
        return int(hits)

    def decr(self, key: str, window: int) -> None:
        self.client.eval(_DECR_IF_POSITIVE, 1, self._name(key, window))

    def clear(self, key: str, window: int) -> None:
        self.client.delete(self._name(key, window))


_DATABASE = DatabaseStore()
_redis_stores: dict[tuple[str, str], RedisStore] = {}
_redis_down_until: dict[str, float] = {}
_lock = threading.Lock()


def _redis_store(url: str) -> RedisStore | None:
    """The Redis store for `url`, or None while Redis is known to be down."""
    if _redis_down_until.get(url, 0) > time.monotonic():
        return None
    prefix = setting("RATELIMIT_KEY_PREFIX", "linli")
    with _lock:
        store = _redis_stores.get((url, prefix))
        if store is None:
            store = _redis_stores[(url, prefix)] = RedisStore(url, prefix)
    return store


def _with_store(operation):
    """Run `operation(store)` on Redis when configured and up, else (or when it fails) on the database."""
    url = setting("REDIS_URL", None)
    store = _redis_store(url) if url else None
    if store is not None:
        import redis

        try:
            return operation(store)
        except redis.RedisError as exc:
            _redis_down_until[url] = time.monotonic() + REDIS_RETRY
            log.warning("throttle: Redis unreachable (%s); counting in the database for %d s",
                        type(exc).__name__, REDIS_RETRY)
    return operation(_DATABASE)


# -- counting -----------------------------------------------------------------------------------


def enabled() -> bool:
    return bool(setting("RATELIMIT_ENABLED", True))


def hit(buckets: Sequence[Bucket]) -> Verdict:
    """Count one attempt on every bucket; refused when any counter is past its rule's amount."""
    if not enabled():
        return Verdict(True)
    moment = now()
    counters = _counters(buckets, moment)

    def count(store) -> list[int]:
        return [store.incr(key, window, rule.seconds) for key, window, rule in counters]

    hits = _with_store(count)
    waits = [window + rule.seconds - moment for (_key, window, rule), n in zip(counters, hits, strict=True)
             if n > rule.amount]
    if not waits:
        return Verdict(True)
    first = any(n == rule.amount + 1 for (_k, _w, rule), n in zip(counters, hits, strict=True))
    return Verdict(False, max(1, math.ceil(max(waits))), first)


def forgive(buckets: Sequence[Bucket]) -> None:
    """Take back the attempt just counted on these buckets (it turned out not to be a guess)."""
    if not enabled():
        return
    counters = _counters(buckets, now())
    _with_store(lambda store: [store.decr(key, window) for key, window, _rule in counters])


def clear(buckets: Sequence[Bucket]) -> None:
    """Forget every attempt counted on these buckets."""
    if not enabled():
        return
    counters = _counters(buckets, now())
    _with_store(lambda store: [store.clear(key, window) for key, window, _rule in counters])


# -- password guesses ---------------------------------------------------------------------------


def _password_buckets(address: str, username: str) -> tuple[Bucket, Bucket]:
    by_address = bucket(PASSWORD_SCOPE, "address", address or "-",
                        parse_rules(setting("RATELIMIT_LOGIN", "10 per minute;50 per hour")))
    by_account = bucket(PASSWORD_SCOPE, "account", (username or "").strip().lower(),
                        parse_rules(setting("RATELIMIT_LOGIN_ACCOUNT", "5 per minute;20 per hour")))
    return by_address, by_account


def password_guess(address: str, username: str) -> Verdict:
    """Count a password guess from `address` at the account `username`, before checking it."""
    return hit(_password_buckets(address, username))


def password_accepted(address: str, username: str) -> None:
    """The password was right: its guess is taken back from the address, the account starts afresh."""
    by_address, by_account = _password_buckets(address, username)
    forgive([by_address])
    clear([by_account])
