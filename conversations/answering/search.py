"""Web search as a server tool: a search provider (one class per provider, picked by CHAT_SEARCH_PROVIDER) finds
pages, the server reads the top ones through the outbound wrapper, and the model gets numbered sources to cite
as [1], [2]. The page shows an answer's sources as links, read back from its tool steps (`answer_sources`).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from django.conf import settings

from chatsite import outbound

if TYPE_CHECKING:
    from conversations.models import Turn

PAGE_BYTES = 512 * 1024
PAGE_SECONDS = 8.0
EXCERPT_CHARS = 1_500
TOOL_NAME = "web_search"  # the server tool (tools.WebSearch) whose results are sources


class SearchFailed(Exception):
    """The search service could not be asked; the message is what the model reads."""


@dataclass(frozen=True)
class SearchResult:
    title: str
    url: str
    snippet: str


class SearchProvider:
    """Finds pages for a query. One subclass per search service, registered by `kind`."""

    kind: ClassVar[str]

    async def search(self, query: str, *, limit: int) -> list[SearchResult]:
        raise NotImplementedError


PROVIDERS: dict[str, type[SearchProvider]] = {}


def provider(cls: type[SearchProvider]) -> type[SearchProvider]:
    PROVIDERS[cls.kind] = cls
    return cls


def is_web_url(url: object) -> bool:
    return isinstance(url, str) and urlsplit(url).scheme in ("http", "https") and bool(urlsplit(url).netloc)


@provider
class SearXNG(SearchProvider):
    """A self-hosted SearXNG instance's JSON API (`format=json` must be enabled in its settings.yml)."""

    kind = "searxng"

    async def search(self, query: str, *, limit: int) -> list[SearchResult]:
        try:
            answer = await outbound.fetch(
                settings.CHAT_SEARCH_URL.rstrip("/") + "/search", params={"q": query, "format": "json"},
                content_types=("application/json",),
            )
            results = json.loads(answer.text()).get("results", [])
        except outbound.OutboundError as exc:
            raise SearchFailed(f"the search service did not answer: {exc}") from None
        except (ValueError, AttributeError):
            raise SearchFailed("the search service answered something that is not a result list.") from None
        found: list[SearchResult] = []
        for item in results if isinstance(results, list) else []:
            if not isinstance(item, dict) or not is_web_url(item.get("url")):
                continue
            found.append(SearchResult(title=str(item.get("title") or item["url"])[:300], url=item["url"],
                                      snippet=str(item.get("content") or "")[:EXCERPT_CHARS]))
            if len(found) == limit:
                break
        return found


class _TextExtractor(HTMLParser):
    """The readable text of an HTML page: no scripts, styles, navigation or forms; blocks on their own lines."""

    SKIPPED = frozenset({"script", "style", "noscript", "template", "svg", "nav", "header", "footer", "form",
                         "head", "iframe"})
    BLOCKS = frozenset({"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section", "article",
                        "pre", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skipping = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self.SKIPPED:
            self._skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self.SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skipping:
            self.parts.append(data)


def page_text(html: str) -> str:
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    lines = (re.sub(r"\s+", " ", line).strip() for line in "".join(extractor.parts).split("\n"))
    return "\n".join(line for line in lines if line)


async def read_page(result: SearchResult) -> str:
    """The page's text (cut to an excerpt), or its search snippet with why the page itself was not read."""
    try:
        page = await outbound.fetch(result.url, max_bytes=PAGE_BYTES, total_seconds=PAGE_SECONDS)
    except outbound.OutboundError as exc:
        return f"{result.snippet}\n(The page itself was not read: {exc})".strip()
    text = page_text(page.text()) if "html" in page.content_type else page.text()
    excerpt = text[:EXCERPT_CHARS]
    if page.truncated or len(text) > EXCERPT_CHARS:
        excerpt += " [...]"
    return excerpt or result.snippet


async def search_and_read(query: str) -> str:
    """Search with the configured provider, read the top pages, and number them as sources for the model."""
    if settings.CHAT_SEARCH_PROVIDER not in PROVIDERS:
        raise SearchFailed(f"the site's search provider {settings.CHAT_SEARCH_PROVIDER!r} is not one chatsite has.")
    search_provider = PROVIDERS[settings.CHAT_SEARCH_PROVIDER]()
    results = await search_provider.search(query, limit=settings.CHAT_SEARCH_RESULTS)
    if not results:
        return f"No results for {query!r}."
    excerpts = await asyncio.gather(*(read_page(result) for result in results))
    return "\n\n".join(
        f"[{number}] {result.title}\nURL: {result.url}\n{excerpt}"
        for number, (result, excerpt) in enumerate(zip(results, excerpts, strict=True), start=1)
    )


@dataclass(frozen=True)
class Source:
    number: int
    title: str
    url: str


_SOURCE_HEAD = re.compile(r"^\[(\d{1,3})\] (.*)\nURL: (\S+)$", re.MULTILINE)


def answer_sources(branch: list[Turn]) -> list[Source]:
    """The sources of the answer that ends `branch`: the web_search results stored as tool steps since the last
    user message, http(s) links only."""
    start = max((i for i, turn in enumerate(branch) if turn.role == "user"), default=-1) + 1
    search_calls: set[str] = set()
    sources: list[Source] = []
    for turn in branch[start:]:
        for call in turn.tool_calls or []:
            if call.get("function", {}).get("name") == TOOL_NAME:
                search_calls.add(call.get("id"))
        if turn.role == "tool" and turn.tool_call_id in search_calls and not turn.content.startswith("Error:"):
            for number, title, url in _SOURCE_HEAD.findall(turn.content):
                if is_web_url(url):
                    sources.append(Source(number=int(number), title=title, url=url))
    return sources
