"""The rules of webhook subscriptions as plain Python: URLs, the secret, the signature, and which deliveries go."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from juwei.aggregate import Invalid
from services.notify.subscriptions.domain import Queued, checked_url, due_runs, endpoint_of, new_secret, signature


def test_the_signature_is_the_standard_webhooks_one() -> None:
    # The example of the Standard Webhooks specification (and of its reference libraries).
    made = signature(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    )
    assert made == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert (
        signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, b"{}") != made
    )


def test_a_secret_is_32_random_bytes_behind_whsec() -> None:
    one, two = new_secret(), new_secret()
    assert one.startswith("whsec_") and len(base64.b64decode(one[6:])) == 32 and one != two


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.org/in?token=x", "http://127.0.0.1:8080/hook", "https://[::1]/h", "http://dash.gov.cn"],
)
def test_http_and_https_urls_with_a_host_are_taken(url: str) -> None:
    assert checked_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.org/in",
        "file:///etc/passwd",
        "http://user@hooks.example.org/",
        "http://user:pw@hooks.example.org/",
        "https://:pw@hooks.example.org/",
        "http:///path-only",
        "http://",
        "hooks.example.org/in",
        "https://hooks.example.org:port/",
        "https://hooks.example.org/a b",
        "https://hooks.example.org/" + "a" * 2000,
    ],
)
def test_other_urls_are_refused_with_a_reason(url: str) -> None:
    with pytest.raises(Invalid) as refused:
        checked_url(url)
    assert refused.value.code == "url-refused" and str(refused.value)


def test_listings_show_scheme_and_host_only() -> None:
    assert endpoint_of("https://hooks.example.org:8443/in/x?token=secret") == "https://hooks.example.org:8443"


def test_a_lane_waiting_for_its_retry_holds_its_later_deliveries_and_no_other_lane() -> None:
    now = datetime(2022, 4, 12, 8, 0, tzinfo=UTC)
    later = now + timedelta(seconds=30)
    pending = [
        Queued(1, "building:c1:1", later),  # waits for its retry
        Queued(2, "building:c1:2", now),
        Queued(3, "building:c1:1", now),  # behind 1: held
        Queued(4, "building:c1:2", now),
        Queued(5, "stream:zone-c1", now),
        Queued(6, "building:c1:2", now),
    ]
    assert due_runs(pending, now, per_lane=25) == {"building:c1:2": [2, 4, 6], "stream:zone-c1": [5]}
    assert due_runs(pending, later, per_lane=2) == {
        "building:c1:1": [1, 3],
        "building:c1:2": [2, 4],
        "stream:zone-c1": [5],
    }
