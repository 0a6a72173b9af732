"""Project middleware, async-capable so the streaming views run without a thread hop per request."""

import re

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import BadRequest

CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


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


class RefuseControlCharactersMiddleware(HybridMiddleware):
    """A 400 (the site's bad-request page, or the API's error shape) for a request whose path holds a control
    character or whose query string holds a NUL: no route of chatsite takes one, and PostgreSQL refuses a NUL in
    any text, so one check here keeps every string a view passes to the database (a share token, a response id,
    a search) from reaching it. Before the session and authentication middleware: nothing is read for them."""

    def process_request(self, request):
        if CONTROL_CHARACTER.search(request.path_info):
            raise BadRequest("The path contains a control character.")
        for name, values in request.GET.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                raise BadRequest("A query parameter contains a NUL character.")
        return None
