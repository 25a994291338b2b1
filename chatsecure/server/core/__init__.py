"""The chat service, protocol-neutral: it imports no wire format and opens no socket.

``service.ChatService`` is the entry; ``outbox`` is the seam its wire adapters fill in.
"""
