"""What the services agree on, and the only code one service may import from another's side.

One module per producing service holds its published events (``contracts.residents``, ``.supplies``,
``.testing``, ``.notify``: the payload classes, their registry, topic and upcasters); ``roles`` names the roles
a key can carry, ``ids`` how ids travel, ``sensitivity`` how sensitive each payload field is, and ``access``
who may read what (the feed's scope per role, and the role dependencies every service's routes use).
The event modules are plain data: importing them loads no database, web framework or broker client.
"""
