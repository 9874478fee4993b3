"""The aztags commands, one module per command or group; cli.py imports each one when it runs."""
