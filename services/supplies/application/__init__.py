"""The supplies service's use cases: what a route calls, between parsing a request and presenting the answer.

Commands run in one unit of work each (``juwei.unit_of_work``); what they need of the register (a building's
logistics group, a resident's household) is read from supplies' own copy of it (``register``). One module per
area of the work: ``policy``, ``batches``, ``deliveries``, ``medicine``, ``donations``.
"""
