"""The desktop client's logic, kept free of tkinter so it is tested without a window.

``network`` owns the socket on its own thread; ``session`` turns what it reports into
conversation ``state`` on the caller's thread; ``validation`` and ``commands`` check what
people type; ``trust`` and ``profile`` keep the little the client remembers on disk.
"""
