"""The committee's web console: server-rendered pages (zh-CN first) for staff, volunteers and households.

An app of its own beside the services: it talks to them only over their public HTTP APIs, as the person
signed in (their own key), and keeps only accounts, sessions and invitations in a small database of its own.
"""
