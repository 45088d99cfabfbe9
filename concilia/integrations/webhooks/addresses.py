"""Where webhooks may go: receivers on the internet, never this machine or a private network
(a webhook URL must not become a way to reach internal services). Checked when a URL is
registered, and again when each delivery is sent, since a name may resolve elsewhere later."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


def is_internal(host: str) -> bool:
    """Whether the host names this machine or a private network rather than the internet."""
    host = host.rstrip(".").lower().strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        try:  # the forms C libraries also read as IPv4 ("127.1", "0x7f000001")
            address = ipaddress.ip_address(socket.inet_aton(host))
        except OSError:
            return False  # a name: looked up when the delivery is sent
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def refused_at_send(url: str) -> str:
    """Why a delivery to `url` must not be sent now ("" when it may): its host name resolves
    to a non-public address. A name that does not resolve is left to fail as a connection error
    (and be retried). The connection may still race a DNS change; the registration check and
    this one close the plain cases."""
    if settings.WEBHOOK_ALLOW_PRIVATE_URLS:
        return ""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if is_internal(host):
        return f"{host} is not a public address"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        found = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, ValueError):
        return ""
    for *_rest, sockaddr in found:
        if is_internal(str(sockaddr[0])):
            return f"{host} resolves to {sockaddr[0]}, which is not a public address"
    return ""
