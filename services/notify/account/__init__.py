"""The daily account (光做不说不行): each building group hears, once a day, what was done for it and the compound.

``domain`` (the figures and the text's parameters, no I/O), ``views`` (the day counters notify keeps from the
other services' events: a projection, rebuilt by ``juwei replay notify``), ``sending`` (composing the day's
messages through notify's own fan-out, at the set hour and on demand).
"""
