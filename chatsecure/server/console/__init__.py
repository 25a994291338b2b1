"""The server console: a Tk window that hosts the server and watches it through its events.

``model`` is the console's logic without Tk (sessions, event log, counters); ``window``
is the Tk view, which starts and stops a ``chatsecure.server.host.ServerHost`` and shows
what the model makes of the chat service's events.
"""
