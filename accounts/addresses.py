"""The client's address as the account throttles see it (login lockouts by django-axes, sign-up attempts)."""

from django.conf import settings


def client_ip_address(request) -> str:
    """The client's address, for login throttling (AXES_CLIENT_IP_CALLABLE).

    Without a proxy it is REMOTE_ADDR and X-Forwarded-For is ignored (any client can send one). Behind
    AXES_TRUSTED_PROXY_COUNT proxies, each appends the address it saw, so the client is that many entries
    from the right; anything left of it came from the client and could be forged to dodge a lockout.
    """
    remote_addr = request.META.get("REMOTE_ADDR", "")
    proxies = settings.AXES_TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote_addr
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < proxies:
        return remote_addr  # not through the proxy chain: throttle the direct peer
    return forwarded[-proxies]
