"""chatsecure's benchmark suite: a TLS load generator, scenarios, and ngircd as the peer."""
