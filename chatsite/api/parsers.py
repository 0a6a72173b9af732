"""Request parsers for the API (their own module: DRF loads them while its views module is importing)."""

from rest_framework import exceptions, parsers


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing JSON nested too deeply for Python's parser (a 400, not a 500):
    DRF catches the ValueError of malformed JSON, not the RecursionError of 1,000 nested arrays."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - the document is nested too deeply.") from None
