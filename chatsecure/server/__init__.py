"""The chat server: ``core`` (chat logic, no sockets) and ``transport`` (sockets, TLS, threads)."""
