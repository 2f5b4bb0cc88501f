"""The platform imitations now live in ``demo.sinks`` (the demo and the end-to-end test use them too)."""

from demo.sinks import LIMITS, RATE_CODE, Bot, Mailbox, Platforms, free_port

__all__ = ["LIMITS", "RATE_CODE", "Bot", "Mailbox", "Platforms", "free_port"]
