"""The proofs of being on site (matcher/checkin.py): time-based codes and signed QR tokens.

Pure functions, no database: the use cases that ask for them are tested in test_assignments.py.
"""

from __future__ import annotations

import pytest

from matcher import checkin

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
KEY = "test-secret"
T = 1_900_000_040.0  # a moment 20 seconds into a step
STEP = checkin.STEP


def test_a_new_secret_is_random_base32_of_160_bits():
    secrets = {checkin.new_secret() for _ in range(20)}
    assert len(secrets) == 20
    assert all(len(s) == 32 and set(s) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for s in secrets)


def test_a_code_is_six_digits_and_changes_every_step():
    codes = [checkin.code_at(SECRET, checkin.CHECK_IN, T + i * STEP) for i in range(30)]
    assert all(len(c) == 6 and c.isascii() and c.isdigit() for c in codes)
    assert len(set(codes)) > 25  # a new code nearly every minute (two equal ones are a 1 in 10^6 chance)
    assert checkin.code_at(SECRET, checkin.CHECK_IN, T) == checkin.code_at(SECRET, checkin.CHECK_IN, T + 39)
    assert checkin.seconds_left(T) == 40 and checkin.seconds_left(T + 40) == STEP


def test_the_current_and_the_previous_code_are_accepted_no_older_and_no_later_one():
    def code(steps: int) -> str:
        return checkin.code_at(SECRET, checkin.CHECK_IN, T + steps * STEP)

    assert checkin.verify_code(SECRET, checkin.CHECK_IN, code(0), T)
    assert checkin.verify_code(SECRET, checkin.CHECK_IN, code(-1), T)
    for steps in (-2, -3, 1, 2, 60 * 24):  # too old, or shown only later (a day ahead: no guessing ahead)
        if code(steps) not in {code(0), code(-1)}:
            assert not checkin.verify_code(SECRET, checkin.CHECK_IN, code(steps), T), steps


def test_check_in_and_check_out_have_unrelated_codes():
    pairs = [(checkin.code_at(SECRET, checkin.CHECK_IN, T + i * STEP),
              checkin.code_at(SECRET, checkin.CHECK_OUT, T + i * STEP)) for i in range(30)]
    assert sum(a == b for a, b in pairs) <= 1
    for code_in, code_out in pairs[:1]:
        assert not checkin.verify_code(SECRET, checkin.CHECK_OUT, code_in, T)
        assert checkin.verify_code(SECRET, checkin.CHECK_OUT, code_out, T)
    with pytest.raises(ValueError):
        checkin.code_at(SECRET, "both", T)


def test_another_secret_gives_other_codes():
    other = checkin.new_secret()
    codes = [checkin.code_at(SECRET, checkin.CHECK_IN, T + i * STEP) for i in range(10)]
    others = [checkin.code_at(other, checkin.CHECK_IN, T + i * STEP) for i in range(10)]
    assert sum(a == b for a, b in zip(codes, others, strict=True)) <= 1


@pytest.mark.parametrize("typed", ["{c}", " {c} ", "{c3} {c4}", "{c3}-{c4}", "{full}"])
def test_spaces_dashes_and_full_width_digits_are_read(typed):
    code = checkin.code_at(SECRET, checkin.CHECK_IN, T)
    full = code.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    raw = typed.format(c=code, c3=code[:3], c4=code[3:], full=full)
    assert checkin.well_formed(raw)
    assert checkin.verify_code(SECRET, checkin.CHECK_IN, raw, T)


@pytest.mark.parametrize("raw", ["", None, "12345", "1234567", "abcdef", "²²²²²²", "١٢٣٤٥٦", "12345²", "123456\n7"])
def test_anything_but_six_digits_is_not_a_code(raw):
    assert not checkin.well_formed(raw)
    assert not checkin.verify_code(SECRET, checkin.CHECK_IN, raw, T)


def test_no_secret_no_code():
    assert not checkin.verify_code(None, checkin.CHECK_IN, "123456", T)
    assert not checkin.verify_code("", checkin.CHECK_IN, "123456", T)


def test_a_token_names_its_occurrence_and_purpose_and_is_short_lived():
    token = checkin.make_token(KEY, 7, checkin.CHECK_IN, T)
    assert checkin.verify_token(KEY, token, 7, checkin.CHECK_IN, T, 180)
    assert checkin.verify_token(KEY, token, 7, checkin.CHECK_IN, T + 180, 180)
    assert not checkin.verify_token(KEY, token, 7, checkin.CHECK_IN, T + 181, 180)  # expired
    assert not checkin.verify_token(KEY, token, 7, checkin.CHECK_IN, T - 5, 180)  # from the future
    assert not checkin.verify_token(KEY, token, 8, checkin.CHECK_IN, T, 180)  # another occurrence
    assert not checkin.verify_token(KEY, token, 7, checkin.CHECK_OUT, T, 180)  # another purpose
    assert not checkin.verify_token("another key", token, 7, checkin.CHECK_IN, T, 180)
    assert not checkin.verify_token(None, token, 7, checkin.CHECK_IN, T, 180)


@pytest.mark.parametrize("bad", ["", "x", "a.b.c", "eyJvIjo3LCJwIjoiaW4ifQ.AAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                 "x" * 10_000, "１２３４５６"])
def test_a_forged_or_garbled_token_is_refused(bad):
    assert not checkin.verify_token(KEY, bad, 7, checkin.CHECK_IN, T, 180)


def test_a_tampered_token_is_refused():
    token = checkin.make_token(KEY, 7, checkin.CHECK_IN, T)
    payload, stamp, signature = token.split(".")
    other = checkin.make_token(KEY, 8, checkin.CHECK_IN, T).split(".")[0]
    assert not checkin.verify_token(KEY, f"{other}.{stamp}.{signature}", 8, checkin.CHECK_IN, T, 180)
    with pytest.raises(ValueError):
        checkin.make_token("", 7, checkin.CHECK_IN, T)
