"""Notify: one official group per building, and fan-out that never loses or doubles a message."""
