"""Webhook subscriptions for outside systems: the events a key may read on the feed, pushed to its URL.

Apart from the building groups' channels: an ``external-consumer`` key or a district operator registers a URL,
the event types and the compounds it wants; notify queues each matching event it receives (in the consumer's
transaction, as the feed would show it to that key) and the dispatcher delivers it signed per the Standard
Webhooks spec, in order per building, under a lease per subscription (``services.notify.dispatch.subscribers``).
"""
