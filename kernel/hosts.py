"""The allow-list of hosts that jobs may call."""

from collections.abc import Iterable


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """True when ``host`` is listed, or is a subdomain of a listed ``*.domain``."""
    host = host.lower().rstrip(".")
    for pattern in allowed:
        pattern = pattern.lower().rstrip(".")
        if pattern == "*":
            return True
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False
