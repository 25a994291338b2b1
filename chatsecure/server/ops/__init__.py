"""Running the server as a service: its log, reload, metrics and systemd's notifications.

None of it changes what the chat does; ``chatsecure-server`` wires it around a
``ServerHost``.
"""
