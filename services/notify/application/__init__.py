"""The notify service's use cases: what a route calls, between parsing a request and presenting the answer.

Commands run in one unit of work each (``juwei.unit_of_work``); messages are composed and fanned out to every
channel of their groups in that same unit (``handlers.compose``). One module per area: ``groups`` (building
groups, channels, quiet hours), ``messages`` (announcements, the delivery log, requeues), ``questions`` (and
answers, the FAQ), ``board`` (the building board's links and notices).
"""
