"""Project middleware, async-capable so the streaming views run without a thread hop per request."""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction


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
