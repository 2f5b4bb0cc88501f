"""Ids on the bus are unique in the whole district; the HTTP APIs speak ids local to a compound."""


def global_id(compound: str, local: str) -> str:
    """``<compound>:<id in the compound>``: how an id travels in events and streams."""
    return f"{compound}:{local}"


def local_id(value: str) -> str:
    """The id within its compound, as the HTTP APIs speak it."""
    return value.split(":", 1)[1] if ":" in value else value
