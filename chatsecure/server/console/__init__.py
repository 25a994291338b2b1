"""The server console: a Tk window that hosts the server and watches it through core events.

``model`` is the console's logic without Tk (sessions, event log, counters), ``host``
starts and stops a fresh core and listener, and ``window`` is the Tk view over both.
"""
