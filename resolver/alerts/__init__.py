"""Change alerts: events computed at ingest, kept in an outbox, delivered to channels.

- ``model``: the event and message types every part shares.
- ``watches``: which tags a ``[[watch]]`` follows; ``events``: what an ingest raised per watch.
- ``channels/``: one module per channel type (webhook, slack, teams, email, syslog, command),
  each rendering a message and sending it.
- ``deliver``: the delivery worker (backoff, Retry-After, dead letters, disabled channels).
- ``secrets``: ``env:NAME`` / ``file:PATH`` values of the config file.
"""
