"""The IRC wire adapter: IRC clients (WeeChat, irssi, HexChat) over the same chat service.

The IRC codec is its own sans-IO module here, not ``chatsecure.protocol``.
"""
