"""The explorer: `initlab serve`, a local web page that trains initlab models as you watch.

settings (the page's values, checked), session (one tab's data, seeds and measurements), app (the
Starlette application and its websocket) and command (the `initlab serve` subcommand). Only app and
command import the web stack.
"""
