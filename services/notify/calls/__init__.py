"""The unreachable: households in no building group hear urgent messages from their information officer.

``domain`` (which messages are urgent, who is called, the call list of one message in one building),
``views`` (the marked households and the calls, projected), ``listing`` (the consumer's step that lists the
calls of an urgent message), ``application`` and ``api`` (the officer's list, the done mark, staff's overdue).
"""
