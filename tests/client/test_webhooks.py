"""The client's webhook verifier against the Standard Webhooks specification: its published test vector, and
what a receiver must refuse (an altered body, another secret, a stale or future timestamp, no signature)."""

from __future__ import annotations

import base64
import secrets
import time

import pytest
from juwei_client import WebhookVerificationError, WebhookVerifier, sign

# The specification's reference libraries' vector (standard-webhooks/standard-webhooks,
# libraries/python/tests/test_webhooks.py, test_sign_function): secret, id, timestamp, body, signature.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = '{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def headers(webhook_id: str, timestamp: int, signature: str) -> dict[str, str]:
    return {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def test_the_specifications_vector_is_signed_and_verified() -> None:
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    verifier = WebhookVerifier(SPEC_SECRET)
    verifier.verify(SPEC_BODY.encode(), headers(SPEC_ID, SPEC_TIMESTAMP, SPEC_SIGNATURE), now=SPEC_TIMESTAMP + 10)
    # The secret without its prefix is the same key; header names in any case.
    upper = {k.title(): v for k, v in headers(SPEC_ID, SPEC_TIMESTAMP, SPEC_SIGNATURE).items()}
    WebhookVerifier(SPEC_SECRET.removeprefix("whsec_")).verify(SPEC_BODY, upper, now=SPEC_TIMESTAMP)


def test_a_signature_among_several_is_enough_and_other_versions_are_ignored() -> None:
    other = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
    listed = " ".join([other, "v1a," + SPEC_SIGNATURE[3:], SPEC_SIGNATURE, other])
    WebhookVerifier(SPEC_SECRET).verify(SPEC_BODY, headers(SPEC_ID, SPEC_TIMESTAMP, listed), now=SPEC_TIMESTAMP)
    only_others = " ".join([other, "v2," + SPEC_SIGNATURE[3:]])
    with pytest.raises(WebhookVerificationError, match="no signature matches"):
        WebhookVerifier(SPEC_SECRET).verify(
            SPEC_BODY, headers(SPEC_ID, SPEC_TIMESTAMP, only_others), now=SPEC_TIMESTAMP
        )


def test_an_altered_body_id_or_timestamp_is_refused() -> None:
    verifier = WebhookVerifier(SPEC_SECRET)
    now = SPEC_TIMESTAMP
    with pytest.raises(WebhookVerificationError, match="no signature matches"):
        verifier.verify('{"test": 2432232315}', headers(SPEC_ID, SPEC_TIMESTAMP, SPEC_SIGNATURE), now=now)
    with pytest.raises(WebhookVerificationError, match="no signature matches"):
        verifier.verify(SPEC_BODY + " ", headers(SPEC_ID, SPEC_TIMESTAMP, SPEC_SIGNATURE), now=now)
    with pytest.raises(WebhookVerificationError, match="no signature matches"):
        verifier.verify(SPEC_BODY, headers("msg_other", SPEC_TIMESTAMP, SPEC_SIGNATURE), now=now)
    with pytest.raises(WebhookVerificationError, match="no signature matches"):
        verifier.verify(SPEC_BODY, headers(SPEC_ID, SPEC_TIMESTAMP + 1, SPEC_SIGNATURE), now=now)


def test_another_secret_is_refused() -> None:
    other = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    with pytest.raises(WebhookVerificationError, match="no signature matches"):
        WebhookVerifier(other).verify(SPEC_BODY, headers(SPEC_ID, SPEC_TIMESTAMP, SPEC_SIGNATURE), now=SPEC_TIMESTAMP)


def test_a_stale_or_future_timestamp_is_refused_at_five_minutes() -> None:
    verifier = WebhookVerifier(SPEC_SECRET)
    signed = headers(SPEC_ID, SPEC_TIMESTAMP, SPEC_SIGNATURE)
    verifier.verify(SPEC_BODY, signed, now=SPEC_TIMESTAMP + 300)  # at the edge: still fresh
    verifier.verify(SPEC_BODY, signed, now=SPEC_TIMESTAMP - 300)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verifier.verify(SPEC_BODY, signed, now=SPEC_TIMESTAMP + 301)
    with pytest.raises(WebhookVerificationError, match="future"):
        verifier.verify(SPEC_BODY, signed, now=SPEC_TIMESTAMP - 301)
    # By the real clock, the vector of 2021 is long stale.
    with pytest.raises(WebhookVerificationError, match="too old"):
        verifier.verify(SPEC_BODY, signed)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_or_a_bad_timestamp_is_refused(missing: str) -> None:
    signed = headers(SPEC_ID, SPEC_TIMESTAMP, SPEC_SIGNATURE)
    del signed[missing]
    with pytest.raises(WebhookVerificationError, match="required"):
        WebhookVerifier(SPEC_SECRET).verify(SPEC_BODY, signed, now=SPEC_TIMESTAMP)
    bad = {**headers(SPEC_ID, SPEC_TIMESTAMP, SPEC_SIGNATURE), "webhook-timestamp": "hello"}
    with pytest.raises(WebhookVerificationError, match="whole number"):
        WebhookVerifier(SPEC_SECRET).verify(SPEC_BODY, bad, now=SPEC_TIMESTAMP)


def test_a_fresh_webhook_signed_here_is_verified_by_the_real_clock() -> None:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    body = b'{"type": "juwei.notify.MessageComposed.v1", "data": {"building": "c1:7"}}'
    stamp = int(time.time())
    WebhookVerifier(secret).verify(body, headers("msg_1", stamp, sign(secret, "msg_1", stamp, body)))
    with pytest.raises(ValueError, match="base64"):
        WebhookVerifier("whsec_not base64!")
