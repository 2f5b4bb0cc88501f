"""Signed, expiring links (juwei.signed_links): pure, no I/O, the clock passed in."""

from __future__ import annotations

from urllib.parse import parse_qs

from juwei.signed_links import SIGNATURE_LENGTH, LinkState, check, signature, signed_query

SECRET = "s3cret-for-tests"
PATH = "/photos/c1/d-1/" + "ab" * 32
NOW = 1_650_000_000


def _signed(lifetime: int = 3600, secret: str = SECRET, path: str = PATH) -> tuple[str, str]:
    query = parse_qs(signed_query(secret, path, NOW, lifetime))
    return query["expires"][0], query["signature"][0]


def test_a_link_is_good_until_it_expires_then_expired() -> None:
    expires, signed = _signed(3600)
    assert expires == str(NOW + 3600) and len(signed) == SIGNATURE_LENGTH
    assert check(SECRET, PATH, expires, signed, NOW) is LinkState.GOOD
    assert check(SECRET, PATH, expires, signed, NOW + 3599) is LinkState.GOOD
    assert check(SECRET, PATH, expires, signed, NOW + 3600) is LinkState.EXPIRED


def test_the_signature_is_hmac_sha256_of_path_and_expiry_deterministic() -> None:
    assert signature(SECRET, PATH, 5) == signature(SECRET, PATH, 5)
    assert signature(SECRET, PATH, 5) != signature(SECRET, PATH, 6)
    assert signature(SECRET, PATH, 5) != signature("other", PATH, 5)
    # The separator keeps subject and expiry apart: "…1" with expiry 23 is not "…12" with expiry 3.
    assert signature(SECRET, "/a1", 23) != signature(SECRET, "/a12", 3)


def test_unsigned_altered_and_forged_links_are_told_apart_from_expired_ones() -> None:
    expires, signed = _signed(3600)
    assert check(SECRET, PATH, None, None, NOW) is LinkState.UNSIGNED
    assert check(SECRET, PATH, expires, None, NOW) is LinkState.UNSIGNED
    assert check(SECRET, PATH, "", signed, NOW) is LinkState.UNSIGNED
    # Another photo, the same signature: forged.
    assert check(SECRET, PATH.replace("ab", "cd", 1), expires, signed, NOW) is LinkState.FORGED
    # An expiry pushed later is a forgery, not a longer link; so is another spelling of the same number.
    assert check(SECRET, PATH, str(int(expires) + 86400), signed, NOW) is LinkState.FORGED
    assert check(SECRET, PATH, "0" + expires, signed, NOW) is LinkState.FORGED
    # An altered expiry that is also past is still a forgery (the signature is checked first).
    assert check(SECRET, PATH, str(NOW - 10), signed, NOW) is LinkState.FORGED
    flipped = ("A" if signed[0] != "A" else "B") + signed[1:]
    assert check(SECRET, PATH, expires, flipped, NOW) is LinkState.FORGED
    assert check(SECRET, PATH, expires, signed[:-1], NOW) is LinkState.FORGED
    assert check("another deployment", PATH, expires, signed, NOW) is LinkState.FORGED
    for junk in ("-5", "1e9", "１２３", "12345678901234", " 1"):
        assert check(SECRET, PATH, junk, signed, NOW) is LinkState.FORGED, junk
    assert check(SECRET, PATH, expires, "é" * SIGNATURE_LENGTH, NOW) is LinkState.FORGED


def test_an_expired_genuine_link_is_expired_not_forged() -> None:
    expires, signed = _signed(60)
    assert check(SECRET, PATH, expires, signed, NOW + 61) is LinkState.EXPIRED
