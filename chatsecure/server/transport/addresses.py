"""Client and listening addresses, as limits count them and as logs and banners show them."""

from __future__ import annotations

import ipaddress


def peer_ip(raw: str) -> str:
    """The client's IP as limits should count it: IPv4-mapped IPv6 becomes plain IPv4."""
    try:
        ip = ipaddress.ip_address(raw)
    except ValueError:
        return raw
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def format_address(host: str, port: int) -> str:
    """``host:port``, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
