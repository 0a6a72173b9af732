"""Site-wide views: health check and error pages."""

import hmac
import sys

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.utils import DatabaseError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from chatsite.api.errors import (
    DATABASE_RETRY_AFTER_SECONDS,
    database_unavailable_response,
    error_response,
    is_database_unavailable,
)
from conversations.selectors import model_backend_health


@never_cache
@require_GET
def metrics(request):
    """Prometheus metrics, for a scraper holding METRICS_TOKEN (Bearer) or at a METRICS_ALLOWED_IPS address.

    Anyone else gets the site's 404, as if there were nothing here: never public by default.
    """
    token = settings.METRICS_TOKEN
    sent = request.headers.get("Authorization", "")
    allowed = (token and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())) or (
        request.META.get("REMOTE_ADDR") in settings.METRICS_ALLOWED_IPS
    )
    if not allowed:
        raise Http404
    from chatsite import metrics as chat_metrics

    return HttpResponse(chat_metrics.exposition(), content_type=CONTENT_TYPE_LATEST)


@never_cache
@require_GET
def healthz(request):
    """200 while this worker can reach its database and its cache; the model backend's state is reported,
    not required.

    Without the database or the shared cache (throttles, quotas, running answers) chat writes fail: 503. A
    model server that is restarting (or an upstream that is down) fails answers for every worker alike:
    taking all workers out of a load balancer for it would only hide chat history too.
    """
    model = model_backend_health()
    cache_state = "up"
    try:
        cache.get("healthz")
    except Exception:  # any cache backend's connection error
        cache_state = "down"
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return JsonResponse({
            "status": "error", "detail": "database unavailable", "database": "down", "cache": cache_state,
            "model": model,
        }, status=503)
    if cache_state == "down":
        return JsonResponse({
            "status": "error", "detail": "cache unavailable", "database": "up", "cache": "down", "model": model,
        }, status=503)
    return JsonResponse({"status": "ok", "database": "up", "cache": "up", "model": model})


def _wants_json(request) -> bool:
    return request.path.startswith(("/api/", "/v1/")) or "application/json" in request.headers.get(
        "Accept", ""
    )


def bad_request(request, exception=None):
    if _wants_json(request):
        return error_response("bad_request", "The request could not be understood.", 400)
    return render(request, "400.html", status=400)


def permission_denied(request, exception=None):
    if _wants_json(request):
        return error_response("permission_denied", "You do not have permission to do this.", 403)
    return render(request, "403.html", status=403)


def page_not_found(request, exception=None):
    if _wants_json(request):
        return error_response("not_found", "Not found.", 404)
    return render(request, "404.html", status=404)


def server_error(request):
    # Django calls this while handling the exception, so it is still the current one.
    if is_database_unavailable(sys.exc_info()[1]):
        return _database_unavailable(request)
    if _wants_json(request):
        return error_response("server_error", "Something went wrong on our side.", 500)
    return render(request, "500.html", status=500)


def _database_unavailable(request):
    """503, not 500: the database is unreachable for now, and the client should simply retry."""
    if _wants_json(request):
        return database_unavailable_response()
    # The standalone 500 page ("try again in a moment") reads nothing from the database.
    response = render(request, "500.html", status=503)
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


def csrf_failure(request, reason=""):
    if _wants_json(request):
        return error_response("csrf_failed", "CSRF check failed: send the X-CSRFToken header.", 403)
    return render(request, "403.html", {"csrf_failure": True}, status=403)
