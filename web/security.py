"""Security headers applied to every response."""

from flask import Flask, Response

CSP = (
    "default-src 'self'; img-src 'self' data:{tiles}; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def apply_security_headers(app: Flask, response: Response) -> None:
    """CSP, nosniff, referrer policy, framing; HSTS when configured for HTTPS."""
    from .mapview import tile_origin

    origin = tile_origin(app.config.get("MAP_TILE_URL"))
    response.headers.setdefault("Content-Security-Policy", CSP.format(tiles=f" {origin}" if origin else ""))
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Permissions-Policy"] = "geolocation=(self), camera=(self)"
    if app.config.get("HSTS"):
        response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
