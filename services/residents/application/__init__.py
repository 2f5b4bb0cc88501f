"""The residents service's use cases: what a route calls, between parsing a request and presenting the answer.

Commands run in one unit of work each (``juwei.unit_of_work``) and check what only the register knows (a
household's building, a key's buildings); queries read the read models. ``register`` holds the register's
commands, ``lookups`` its answers, ``disclosure`` what of a resident a caller is shown, ``imports`` the
spreadsheets, ``teams`` staff and volunteers, ``zones`` zone status.
"""
