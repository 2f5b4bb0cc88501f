"""The dispatcher: pending deliveries out to the platforms, each outcome recorded the moment it is known.

A periodic job of the service, woken as soon as a unit of work has committed new deliveries (the fan-out
calls ``Runtime.wake_after_commit``); its tick (``JUWEI_NOTIFY_DISPATCH_SECONDS``) only serves retries,
deliveries held for quiet hours and channels waiting for their platform. Per channel, one dispatcher at a
time holds a lease (``notify_channel_state``), so the rate limit holds however many notify processes run.
A dispatcher keeps its leases from round to round and renews one when half of it has gone; it hands them
back when the service stops (a killed process's channels wait until its leases run out).

The chat bots and e-mail (no idempotency): for each delivery,

1. claim it: ``pending → sending`` in its own small transaction (and renew the lease);
2. send it (one HTTP request or one SMTP transaction);
3. record the outcome at once in a second transaction (the attempt, the new status, the event).

Signed webhooks (their receiver dedupes on ``X-Juwei-Delivery``) and without a rate limit: one
transaction claims the due deliveries of all such channels of the round, they are sent (channels side by
side, each channel's in order), and one transaction records every outcome and, for the channels whose sends
all went through, claims their next round (up to ``rounds_together`` rounds back to back).

For the bots the window that remains is between 2 and 3: the request has left and its outcome is not yet
committed — the platform's answer time plus one small commit. A process killed inside it leaves the
delivery in ``sending`` (for webhooks: every delivery of the round). The next holder of the channel's
lease finds it there: the chat bots and e-mail cannot be asked "did you get this?" and have no
idempotency key, so it is marked ``uncertain``, *not* sent again (at most once), and an operator is
alerted and may requeue it; a signed webhook carries our delivery id (``X-Juwei-Delivery``) for its
receiver to dedupe on, so it is simply sent again.

Over a platform's rate limit, the backlog is merged into one digest (``domain.plan_batch``). A rate-limit
answer makes the delivery wait (exponential backoff with jitter, at least the platform's own pause) and
blocks the channel until then; a permanent error dead-letters it and alerts an operator; an error about
the channel itself (bad key, bad signature) also pauses the channel until an operator reconfigures it.
Quiet hours hold non-critical deliveries to people's phones until they end.

Retries are hand-made rather than tenacity's: a retry is not slept in the process but written as the
delivery's ``next_attempt_at``, so it survives a restart, frees the worker for other channels, and any
notify process may make it.

The parts, one job each: ``policy`` (pacing figures, what a round knows of a channel), ``statements`` (a round's
SQL, built once), ``leases``, ``orphans`` (what a dead process left in flight), ``outcomes`` (recording each
fate), ``digests``, ``pacing`` (quiet hours and rate limits), ``together`` (idempotent channels in bulk),
``subscribers`` (outside systems' webhook subscriptions, in order per building, under the same leases) and
``dispatcher`` (the loop, and the periodic job).
"""

from services.notify.dispatch.dispatcher import Dispatcher, dispatcher_of, job
from services.notify.dispatch.policy import ChannelInfo, Claimed, DispatchPolicy

__all__ = ["ChannelInfo", "Claimed", "DispatchPolicy", "Dispatcher", "dispatcher_of", "job"]
