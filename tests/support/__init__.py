"""What the tests, the benchmark's load generator and the scale test share.

- ``ports``: free loopback ports and waiting on a condition with a deadline.
- ``servers``: a Rasa server and the action server on loopback, as shipped.
- ``postgres``: a throw-away PostgreSQL server.
- ``dialogue``: the one scripted-interview driver.
- ``fake_telegram``: a fake Telegram Bot API server.
"""
