"""Server tools: what the model may ask the server to run in the middle of an answer (the tool loop, run.py).

Each tool is a class with the same small interface (a name, a description, a JSON schema for its arguments and
an async `call`), registered by name. The tool loop runs a call with the tool's timeout and caps its result;
a tool that raises, times out or gets bad arguments answers the model with an error result, never a failed
answer. Which tools are offered: `CHAT_SERVER_TOOLS` (names), to the models in `CHAT_TOOL_MODELS` (a model
server that cannot call tools refuses a request that offers them); the per-chat ones by the chat's switches; and
knowledge_search when the answer searches the chat's knowledge bases by tool (KNOWLEDGE_RETRIEVAL, decided as the
answer begins: services.turn_begin).
"""

from __future__ import annotations

import ast
import asyncio
import json
import math
import operator
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from asgiref.sync import sync_to_async
from django.conf import settings

from conversations.answering import mcp, search
from conversations.messages import ToolCall
from conversations.services import release_connection
from knowledge.retrieval import knowledge_search
from personal.models import REMEMBERED, Memory
from personal.services import MemoryRefused, memory_remember
from teams.policy import Feature, Policy

if TYPE_CHECKING:
    from conversations.models import Conversation


class ToolError(Exception):
    """A tool could not do what was asked; its message is what the model reads."""


@dataclass(frozen=True)
class ToolContext:
    """Whose answer a call belongs to, for the tools that act for the chat's owner (`call_in`)."""

    owner_id: int
    conversation_id: Any
    call_id: str = ""
    answer_id: int | None = None  # the pending answer the call is for (its citations: KnowledgeSearch)


class ServerTool:
    name: str
    description: str
    parameters: dict[str, Any]
    timeout: float = 10.0
    max_result_chars: int = 8_000
    # The answer pauses before each call until the user allows or refuses it (approvals.py).
    needs_approval: bool = False
    # A per-chat tool is offered by its own switch (`available`), not by CHAT_SERVER_TOOLS.
    per_chat: ClassVar[bool] = False
    # The kind of server tool the user's groups must allow besides server tools themselves (teams.policy), if any.
    feature: ClassVar[Feature | None] = None

    def available(self, conversation: Conversation | None) -> bool:
        """Whether this chat may use the tool (the site's settings and the user's switch for the chat)."""
        return True

    async def call(self, arguments: dict[str, Any]) -> str:
        raise NotImplementedError

    async def call_in(self, arguments: dict[str, Any], context: ToolContext) -> str:
        """The call within its chat: a tool that acts for the chat's owner overrides this, the others `call`."""
        return await self.call(arguments)

    def spec(self) -> dict[str, Any]:
        """The tool as a Chat Completions `tools` entry."""
        return {"type": "function", "function": {
            "name": self.name, "description": self.description, "parameters": self.parameters,
        }}


REGISTRY: dict[str, ServerTool] = {}


def register(tool: type[ServerTool]) -> type[ServerTool]:
    REGISTRY[tool.name] = tool()
    return tool


def offered(
    model: str, conversation: Conversation | None = None, *, policy: Policy | None = None, knowledge: bool = False
) -> dict[str, ServerTool]:
    """The server tools offered to this model in this chat (none to a model not known to call tools, none to a user
    whose groups do not allow server tools: `policy`): the site's CHAT_SERVER_TOOLS, the per-chat tools the chat has
    turned on, knowledge_search when the answer searches the chat's bases by tool (`knowledge`: TurnStart's
    knowledge_tool), and the MCP tools the chat has enabled (of those its servers list now). A tool of a kind the
    groups do not allow (its `feature`: web search, MCP tools) is not offered, whatever the chat's switch says: the
    policy as the answer begins is what counts."""
    if model not in settings.CHAT_TOOL_MODELS or (policy is not None and not policy.allows(Feature.SERVER_TOOLS)):
        return {}

    def allowed(kind: Feature | None) -> bool:
        return kind is None or policy is None or policy.allows(kind)

    chosen = [REGISTRY[name] for name in settings.CHAT_SERVER_TOOLS if name in REGISTRY and not REGISTRY[name].per_chat]
    chosen += [
        tool for tool in REGISTRY.values() if tool.per_chat and allowed(tool.feature) and tool.available(conversation)
    ]
    if knowledge:
        chosen.append(REGISTRY[KnowledgeSearch.name])
    if conversation is not None and conversation.mcp_tools and allowed(McpTool.feature):
        listed = mcp.list_tools_sync()
        chosen += [McpTool(listed[name]) for name in conversation.mcp_tools if name in listed]
    return {tool.name: tool for tool in chosen}


@dataclass(frozen=True)
class ToolOutcome:
    result: str
    is_error: bool
    seconds: float


async def run(tool: ServerTool | None, call: ToolCall, context: ToolContext) -> ToolOutcome:
    """Run one call: its arguments parsed, within the tool's timeout, its result capped. Never raises."""
    started = time.monotonic()

    def outcome(result: str, is_error: bool) -> ToolOutcome:
        return ToolOutcome(result, is_error, time.monotonic() - started)

    name = call["function"]["name"]
    if tool is None:
        return outcome(f"Error: there is no tool named {name!r}.", True)
    try:
        arguments = json.loads(call["function"]["arguments"] or "{}")
        if not isinstance(arguments, dict):
            raise ValueError("not an object")
    except ValueError:
        return outcome("Error: the arguments are not a JSON object.", True)
    try:
        async with asyncio.timeout(tool.timeout):
            result = await tool.call_in(arguments, replace(context, call_id=call["id"]))
    except TimeoutError:
        return outcome(f"Error: the tool {name} took longer than {tool.timeout:g} s and was stopped.", True)
    except ToolError as exc:
        return outcome(f"Error: {exc}", True)
    except Exception as exc:  # a tool's bug is the model's error result, not a failed answer
        return outcome(f"Error: the tool {name} failed ({type(exc).__name__}).", True)
    if len(result) > tool.max_result_chars:
        result = result[: tool.max_result_chars] + f"\n[cut at {tool.max_result_chars} characters]"
    return outcome(result, False)


# --- Built-in tools ---------------------------------------------------------------------------------------

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    name: getattr(math, name) for name in (
        "sqrt", "exp", "log", "log10", "log2", "sin", "cos", "tan", "asin", "acos", "atan", "floor", "ceil",
        "factorial", "degrees", "radians",
    )
} | {"abs": abs, "round": round, "min": min, "max": max}
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}
MAX_EXPRESSION_CHARS = 500
MAX_EXPONENT = 10_000
MAX_FACTORIAL = 1_000


def evaluate(expression: str) -> int | float:
    """Arithmetic only: numbers, + - * / // % **, parentheses, a few math functions and constants. No names,
    attributes or calls beyond those; exponents and factorials bounded (no CPU or memory bombs)."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters.")
    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval")
    except SyntaxError:
        raise ToolError("that is not an arithmetic expression.") from None

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, ast.Name) and node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](value(node.operand))
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
                raise ToolError(f"exponents above {MAX_EXPONENT} are not computed.")
            return _BINARY[type(node.op)](left, right)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
                and not node.keywords):
            arguments = [value(argument) for argument in node.args]
            if node.func.id == "factorial" and arguments and abs(arguments[0]) > MAX_FACTORIAL:
                raise ToolError(f"factorials above {MAX_FACTORIAL}! are not computed.")
            return _FUNCTIONS[node.func.id](*arguments)
        raise ToolError(f"{ast.unparse(node)!r} is not allowed: only numbers, operators and math functions.")

    try:
        result = value(tree)
    except ZeroDivisionError:
        raise ToolError("division by zero.") from None
    except (OverflowError, ValueError, TypeError) as exc:
        raise ToolError(f"cannot compute that ({exc}).") from None
    if isinstance(result, int) and result.bit_length() > 4_000:
        raise ToolError("the result has more than 1,200 digits.")
    return result


@register
class Calculator(ServerTool):
    name = "calculator"
    description = (
        "Evaluate an arithmetic expression exactly, e.g. '(17.5 * 3) / 4' or 'sqrt(2) ** 10'. Supports + - * / "
        "// % ** (or ^), parentheses, pi, e, and sqrt, exp, log, log10, log2, sin, cos, tan, asin, acos, atan, "
        "floor, ceil, factorial, abs, round, min, max."
    )
    parameters = {
        "type": "object",
        "properties": {"expression": {"type": "string", "description": "The expression to evaluate."}},
        "required": ["expression"],
        "additionalProperties": False,
    }
    timeout = 2.0

    async def call(self, arguments: dict[str, Any]) -> str:
        expression = arguments.get("expression")
        if not isinstance(expression, str) or not expression.strip():
            raise ToolError("give the expression to evaluate as a string.")
        return repr(evaluate(expression))


@register
class CurrentTime(ServerTool):
    name = "current_time"
    description = "The current date and time, in the given IANA time zone (e.g. 'Asia/Seoul') or the site's own."
    parameters = {
        "type": "object",
        "properties": {"timezone": {"type": "string", "description": "An IANA time zone name."}},
        "additionalProperties": False,
    }
    timeout = 2.0

    async def call(self, arguments: dict[str, Any]) -> str:
        name = arguments.get("timezone") or settings.TIME_ZONE
        try:
            zone = zoneinfo.ZoneInfo(str(name))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ToolError(f"unknown time zone {name!r}.") from None
        now = datetime.now(zone)
        return f"{now:%A %Y-%m-%d %H:%M:%S} ({name}, UTC{now:%z})"


@register
class WebSearch(ServerTool):
    name = search.TOOL_NAME
    description = (
        "Search the web and read the top pages. Returns numbered sources; cite the ones you use as [1], [2] "
        "in the answer."
    )
    parameters = {
        "type": "object",
        "properties": {"query": {"type": "string", "description": "What to search for."}},
        "required": ["query"],
        "additionalProperties": False,
    }
    timeout = 30.0
    max_result_chars = 12_000
    per_chat = True
    feature = Feature.WEB_SEARCH

    def available(self, conversation: Conversation | None) -> bool:
        return bool(settings.CHAT_SEARCH_URL) and conversation is not None and conversation.web_search

    async def call(self, arguments: dict[str, Any]) -> str:
        query = arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ToolError("give the search query as a string.")
        try:
            return await search.search_and_read(query.strip()[:500])
        except search.SearchFailed as exc:
            raise ToolError(str(exc)) from None


@register
class KnowledgeSearch(ServerTool):
    """Searches the knowledge bases of the chat (its own, its project's, its assistant's) for the model, and stores
    the passages found as the answer's citations: the same chips as the retrieval step's (knowledge.retrieval)."""

    name = "knowledge_search"
    description = (
        "Search the user's documents attached to this chat. Returns the best passages, numbered; cite the ones you "
        "use as [1], [2] in the answer. Search again with other words if the passages do not hold the answer."
    )
    parameters = {
        "type": "object",
        "properties": {"query": {"type": "string", "description": "What to look for: the question, or its key words."}},
        "required": ["query"],
        "additionalProperties": False,
    }
    timeout = 30.0
    max_result_chars = 12_000
    per_chat = True

    def available(self, conversation: Conversation | None) -> bool:
        """Offered by `offered(knowledge=True)` only: whether the chat has bases is known as its answer begins."""
        return False

    async def call_in(self, arguments: dict[str, Any], context: ToolContext) -> str:
        query = arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ToolError("give what to search for as a string.")
        answer_id = context.answer_id
        if answer_id is None:
            raise ToolError("there is no answer to cite the passages in.")

        def search() -> str:
            try:  # in a worker thread, outside any request (as run.db): its connection released after
                return knowledge_search(owner_id=context.owner_id, conversation_id=context.conversation_id,
                                        answer_id=answer_id, query=query.strip()[:500])
            finally:
                release_connection()

        return await sync_to_async(search, thread_sensitive=False)()


@register
class Remember(ServerTool):
    """Saves a fact in the chat's owner's memory (personal app). Only this tool writes memory for the model, and
    its step shows "Memory saved" in the thread with an undo: nothing is remembered without the user seeing it."""

    name = "remember"
    description = (
        "Save a lasting fact about the user in their memory, to be given to you in later chats: only when the user "
        "asks you to remember something, or states a lasting preference or fact about themselves. One short "
        "sentence per fact."
    )
    parameters = {
        "type": "object",
        "properties": {"fact": {"type": "string", "description": "The fact, in one short sentence."}},
        "required": ["fact"],
        "additionalProperties": False,
    }
    timeout = 5.0

    async def call_in(self, arguments: dict[str, Any], context: ToolContext) -> str:
        fact = arguments.get("fact")
        if not isinstance(fact, str):
            raise ToolError("give the fact to remember as a string.")
        def save() -> Memory:
            try:  # in a worker thread, outside any request (as run.db): its connection released after
                return memory_remember(owner_id=context.owner_id, conversation_id=context.conversation_id,
                                       tool_call_id=context.call_id, content=fact)
            finally:
                release_connection()

        try:
            memory = await sync_to_async(save, thread_sensitive=False)()
        except MemoryRefused as exc:
            raise ToolError(str(exc)) from None
        return REMEMBERED + memory.content


class McpTool(ServerTool):
    """One tool of an operator's MCP server (mcp.py), as the chat that enabled it offers it."""

    per_chat = True
    feature = Feature.MCP_TOOLS

    def __init__(self, listed: mcp.ListedTool) -> None:
        self.listed = listed
        self.name = listed.qualified_name
        self.description = listed.description or f"The tool {listed.name} of the MCP server {listed.server}."
        self.parameters = listed.input_schema
        self.timeout = listed.timeout
        self.max_result_chars = listed.max_result_chars
        self.needs_approval = listed.approval

    async def call(self, arguments: dict[str, Any]) -> str:
        try:
            text, is_error = await mcp.call(self.listed, arguments)
        except mcp.McpUnavailable as exc:
            raise ToolError(str(exc)) from None
        if is_error:
            raise ToolError(text or f"the tool {self.name} reported an error.")
        return text
