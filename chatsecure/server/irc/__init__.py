"""The IRC wire adapter: IRC clients (WeeChat, irssi, HexChat) over the same chat service.

``IrcWire`` is what the IRC listener hands new connections to; each gets an
``IrcSession``. The IRC codec is its own sans-IO module here, not ``chatsecure.protocol``.
"""

from chatsecure.server.irc.wire import IrcWire

__all__ = ["IrcWire"]
