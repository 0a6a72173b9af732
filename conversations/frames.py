"""The sandboxed frames the page shows untrusted content in: Mermaid diagrams drawn from an answer's code block, and
the preview of an HTML or SVG code block.

Each is served with a policy of its own instead of the site's: `sandbox allow-scripts` makes the frame a unique,
opaque origin even if it is opened on its own (no cookies, no storage, no access to the page that shows it), and
`default-src 'none'` leaves it no network (no fetch, no off-site images, scripts or forms). The page hands it the
code with postMessage.
"""

import secrets

from csp.decorators import csp_exempt
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET

_SANDBOX = "sandbox allow-scripts; default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"


@require_GET
@csp_exempt()
@xframe_options_sameorigin
def diagram_frame(request):
    """Draws the Mermaid source the page posts and posts the SVG back (the page shows it as an inert image).
    Only the two scripts with this response's nonce run; Mermaid's SVG carries its own <style>."""
    nonce = secrets.token_urlsafe(18)
    response = render(request, "conversations/frames/diagram.html", {"nonce": nonce})
    response["Content-Security-Policy"] = (
        f"{_SANDBOX}; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; img-src data:; font-src data:"
    )
    return response


@require_GET
@csp_exempt()
@xframe_options_sameorigin
def preview_frame(request):
    """Shows the HTML (or SVG) the page posts as a document of its own: its inline scripts and styles run, in the
    sandbox, and nothing can be fetched."""
    response = render(request, "conversations/frames/preview.html")
    response["Content-Security-Policy"] = (
        f"{_SANDBOX}; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; font-src data:; "
        "media-src data: blob:"
    )
    return response
