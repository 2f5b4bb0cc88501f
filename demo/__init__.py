"""``juwei demo``: the seed compound's day, run against a running suite through the services' public HTTP APIs.

``compound`` makes the compound (buildings, households, residents with their needs, staff and volunteers),
``scenario`` runs the day, ``ledger`` works out what each building group should have received from the
events and what the sinks (``sinks``: local WeCom, DingTalk and e-mail imitations) did receive.
"""
