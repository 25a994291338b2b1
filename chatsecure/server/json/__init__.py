"""The JSON v1 wire adapter: the contract's frames over the protocol-neutral chat service.

``JsonWire`` is what a listener hands new connections to; each gets a ``JsonSession``.
This is the only server package that speaks ``chatsecure.protocol``.
"""

from chatsecure.server.json.wire import JsonWire

__all__ = ["JsonWire"]
