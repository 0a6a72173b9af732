"""TeX math in answers for markdown-it-py: `$…$`, `\\(…\\)` inline, `$$…$$`, `\\[…\\]` display.

The math is only marked up here (`<span class="math-inline">` / `<span class="math-display">` holding the escaped
TeX); the page typesets it with the vendored KaTeX. static/js/markdown-math.js holds the same rules for the
page's own render of a streaming answer, so an answer looks the same while it streams and once it is stored.

A single `$` opens math only before a non-space and closes only after a non-space and not before a digit
(pandoc's rule), so prices such as "$5 and $10" stay text. Code spans and fenced code are never math.
"""

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_block import StateBlock
from markdown_it.rules_inline import StateInline

_BLOCK_DELIMITERS = (("$$", "$$"), ("\\[", "\\]"))
_SPACES = " \t\n\r\f\v"
_DIGITS = "0123456789"


def _closing_dollar(src: str, start: int, end: int) -> int:
    """Index of the `$` that closes single-dollar math opened just before `start`, or -1."""
    index = start
    while (index := src.find("$", index, end)) >= 0:
        before = src[index - 1]
        after = src[index + 1] if index + 1 < end else " "
        if before not in _SPACES and before != "\\" and after not in _DIGITS:
            return index
        index += 1
    return -1


def _math_inline(state: StateInline, silent: bool) -> bool:
    src, pos, end = state.src, state.pos, state.posMax
    if src[pos] == "\\":
        if src.startswith("\\(", pos):
            closer, display = "\\)", False
        elif src.startswith("\\[", pos):
            closer, display = "\\]", True
        else:
            return False
        start = pos + 2
        close = src.find(closer, start, end)
    elif src.startswith("$$", pos):
        closer, display, start = "$$", True, pos + 2
        close = src.find(closer, start, end)
    elif src[pos] == "$":
        closer, display, start = "$", False, pos + 1
        if start >= end or src[start] in _SPACES:
            return False
        close = _closing_dollar(src, start, end)
    else:
        return False
    if close < 0 or not src[start:close].strip():
        return False
    if not silent:
        token = state.push("math_display" if display else "math_inline", "", 0)
        token.content = src[start:close]
    state.pos = close + len(closer)
    return True


def _math_block(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
    if state.sCount[start_line] - state.blkIndent >= 4:
        return False
    first = state.src[state.bMarks[start_line] + state.tShift[start_line]:state.eMarks[start_line]].rstrip()
    delimiters = next((pair for pair in _BLOCK_DELIMITERS if first.startswith(pair[0])), None)
    if delimiters is None:
        return False
    opener, closer = delimiters
    rest = first[len(opener):]
    lines: list[str] = []
    line = start_line
    if len(rest) >= len(closer) and rest.endswith(closer):
        lines.append(rest[:-len(closer)])
    else:
        lines.append(rest)
        while True:
            line += 1
            if line >= end_line or state.sCount[line] < state.blkIndent:
                return False  # never closed (yet, while it streams): plain text
            text = state.src[state.bMarks[line] + state.tShift[line]:state.eMarks[line]].rstrip()
            if text.endswith(closer):
                lines.append(text[:-len(closer)])
                break
            lines.append(text)
    content = "\n".join(lines)
    if not content.strip():
        return False
    if not silent:
        token = state.push("math_block", "", 0)
        token.content = content
        token.map = [start_line, line + 1]
        token.block = True
    state.line = line + 1
    return True


def _render_inline(self, tokens, idx, options, env) -> str:
    return f'<span class="math-inline">{escapeHtml(tokens[idx].content)}</span>'


def _render_display(self, tokens, idx, options, env) -> str:
    return f'<span class="math-display">{escapeHtml(tokens[idx].content)}</span>'


def _render_block(self, tokens, idx, options, env) -> str:
    return f'<p><span class="math-display">{escapeHtml(tokens[idx].content)}</span></p>\n'


def math_plugin(md: MarkdownIt) -> None:
    md.inline.ruler.before("escape", "math_inline", _math_inline)
    md.block.ruler.before("fence", "math_block", _math_block,
                          {"alt": ["paragraph", "reference", "blockquote", "list"]})
    md.add_render_rule("math_inline", _render_inline)
    md.add_render_rule("math_display", _render_display)
    md.add_render_rule("math_block", _render_block)
