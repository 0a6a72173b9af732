"""Code an answer wrote without a fence, fenced before the markdown is rendered.

Small models (the embedded SmolLM2) sometimes write a program as bare lines: its `# comments` become headings and
its lines run together into one paragraph. A run of lines that reads as code (at least two lines that only code
starts or ends like: `def f():`, `import x`, `return y`, `const a = 1;`, a lone `}`...) gets a fence, with the
comments and indented lines between them. Prose, lists, headings over prose, and code already fenced or indented
as a block are left as they are. static/js/markdown-code.js holds the same rules for the page's render of a
streaming answer.
"""

import re

_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_STRONG = re.compile(
    r"""^\s*(?:
        (?:async\s+)?def\s+\w+\s*\(.*\)\s*(?:->.*)?:\s*$
        | class\s+\w+.*:\s*$
        | import\s+[\w.]+(?:\s+as\s+\w+)?(?:\s*,\s*[\w.]+)*\s*;?\s*$
        | from\s+[\w.]+\s+import\s+\S.*$
        | (?:if|elif|while|for|with|except)\b.*:\s*$
        | (?:else|try|finally)\s*:\s*$
        | return\b.*$
        | print\(.*\)\s*$
        | (?:function\s+\w+|const\s+\w+|let\s+\w+|var\s+\w+)\b.*$
        | (?:public|private|protected|static)\s+\w.*$
        | \#include\s*[<"].*$
        | \#!/.*$
        | [\w.\[\]]+\s*(?:=|\+=|-=)\s*\S.*$
        | [\w.]+\(.*\)\s*;?\s*$
        | .*[;{]\s*$
        | [})\]]+[;,)]*\s*$
    )""",
    re.VERBOSE,
)
_COMMENT = re.compile(r"^\s*(?:#|//)")
_INDENTED = re.compile(r"^(?: {2,}|\t)\S")
_LANGUAGES = (
    ("python", re.compile(r"^\s*(?:def |class |import |from \S+ import |print\(|elif )", re.MULTILINE)),
    ("javascript", re.compile(r"^\s*(?:function |const |let |var )|console\.", re.MULTILINE)),
    ("bash", re.compile(r"^#!/bin/(?:ba)?sh|^\s*echo ", re.MULTILINE)),
)


def _kind(line: str) -> str:
    """S: only code reads like this; W: code or a heading/continuation (counts inside a run); B: blank; P: prose."""
    if not line.strip():
        return "B"
    if _STRONG.match(line) and not line.lstrip().startswith(("- ", "* ", "> ")):
        return "S"
    if _COMMENT.match(line) or _INDENTED.match(line):
        return "W"
    return "P"


def _language(lines: list[str]) -> str:
    text = "\n".join(lines)
    for name, pattern in _LANGUAGES:
        if pattern.search(text):
            return name
    return ""


def fence_bare_code(text: str) -> str:
    """`text` with each run of bare code lines put in a fence (unchanged when there is none)."""
    lines = text.split("\n")
    out: list[str] = []
    run: list[str] = []
    in_fence = False

    def flush() -> None:
        end = len(run)
        while end and not run[end - 1].strip():
            end -= 1
        code, blanks = run[:end], run[end:]  # blank lines after the code stay outside its fence
        # A run that starts indented continues the paragraph or list item above it: not code of its own.
        if sum(_kind(line) == "S" for line in code) >= 2 and not _INDENTED.match(code[0]):
            out.extend([f"```{_language(code)}", *code, "```"])
        else:
            out.extend(code)
        out.extend(blanks)
        run.clear()

    for line in lines:
        if _FENCE.match(line):
            flush()
            in_fence = not in_fence
            out.append(line)
            continue
        if in_fence:
            out.append(line)
            continue
        kind = _kind(line)
        if kind == "P":
            flush()
            out.append(line)
        elif kind == "B" and not run:
            out.append(line)
        else:
            run.append(line)
    flush()
    return "\n".join(out)
