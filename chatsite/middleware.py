"""Project middleware, async-capable so the streaming views run without a thread hop per request."""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from whitenoise.middleware import WhiteNoiseMiddleware

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class HybridMiddleware:
    """Runs natively in both sync and async stacks (Django adapts nothing around it)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        response = self.process_request(request)
        if response is None:
            response = self.get_response(request)
        return self.process_response(request, response)

    async def __acall__(self, request):
        response = await self.aprocess_request(request)
        if response is None:
            response = await self.get_response(request)
        return self.process_response(request, response)

    def process_request(self, request):
        return None

    async def aprocess_request(self, request):
        return self.process_request(request)

    def process_response(self, request, response):
        return response


class StaticFilesMiddleware(HybridMiddleware):
    """WhiteNoise's static file serving, without forcing every async request through a thread."""

    def __init__(self, get_response):
        super().__init__(get_response)
        self.whitenoise = WhiteNoiseMiddleware(get_response=None)
        self.prefix = "/" + settings.STATIC_URL.lstrip("/")

    def process_request(self, request):
        if not request.path_info.startswith(self.prefix):
            return None
        if self.whitenoise.autorefresh:
            static_file = self.whitenoise.find_file(request.path_info)
        else:
            static_file = self.whitenoise.files.get(request.path_info)
        return None if static_file is None else self.whitenoise.serve(static_file, request)

    async def aprocess_request(self, request):
        if not request.path_info.startswith(self.prefix):
            return None
        return await sync_to_async(self.process_request, thread_sensitive=False)(request)


class ContentSecurityPolicyMiddleware(HybridMiddleware):
    """A strict CSP: no inline scripts, no off-site images (markdown images can't leak data)."""

    def process_response(self, request, response):
        if request.path_info.startswith(("/api/docs/", "/api/redoc/")):
            # Swagger UI (vendored, served from /static/) needs an inline bootstrap script.
            response.setdefault(
                "Content-Security-Policy",
                CONTENT_SECURITY_POLICY.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")
                .replace("style-src 'self'", "style-src 'self' 'unsafe-inline'"),
            )
        else:
            response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
