// TeX math for markdown-it, the same rules as the server's (conversations/markdown_math.py): `$…$`, `\(…\)` inline,
// `$$…$$`, `\[…\]` display, marked up as <span class="math-inline|math-display"> holding the escaped TeX; then
// typesetMath() renders those spans with the vendored KaTeX. A single `$` opens math only before a non-space and
// closes only after a non-space and not before a digit, so prices such as "$5 and $10" stay text.

import katex from "../vendor/katex/katex.esm.js";

const BLOCK_DELIMITERS = [["$$", "$$"], ["\\[", "\\]"]];
const SPACE = /^[ \t\n\r\f\v]$/;
const DIGIT = /^[0-9]$/;

function closingDollar(src, start, end) {
  for (let index = src.indexOf("$", start); index >= 0 && index < end; index = src.indexOf("$", index + 1)) {
    const before = src[index - 1];
    const after = index + 1 < end ? src[index + 1] : " ";
    if (!SPACE.test(before) && before !== "\\" && !DIGIT.test(after)) return index;
  }
  return -1;
}

function find(src, needle, start, end) {
  const index = src.indexOf(needle, start);
  return index >= 0 && index + needle.length <= end ? index : -1;
}

function mathInline(state, silent) {
  const { src, pos, posMax: end } = state;
  let closer;
  let display;
  let start;
  let close;
  if (src[pos] === "\\") {
    if (src.startsWith("\\(", pos)) [closer, display] = ["\\)", false];
    else if (src.startsWith("\\[", pos)) [closer, display] = ["\\]", true];
    else return false;
    start = pos + 2;
    close = find(src, closer, start, end);
  } else if (src.startsWith("$$", pos)) {
    [closer, display, start] = ["$$", true, pos + 2];
    close = find(src, closer, start, end);
  } else if (src[pos] === "$") {
    [closer, display, start] = ["$", false, pos + 1];
    if (start >= end || SPACE.test(src[start])) return false;
    close = closingDollar(src, start, end);
  } else {
    return false;
  }
  if (close < 0 || !src.slice(start, close).trim()) return false;
  if (!silent) {
    const token = state.push(display ? "math_display" : "math_inline", "", 0);
    token.content = src.slice(start, close);
  }
  state.pos = close + closer.length;
  return true;
}

function mathBlock(state, startLine, endLine, silent) {
  if (state.sCount[startLine] - state.blkIndent >= 4) return false;
  const lineText = (line) => state.src.slice(state.bMarks[line] + state.tShift[line], state.eMarks[line]).trimEnd();
  const first = lineText(startLine);
  const delimiters = BLOCK_DELIMITERS.find(([opener]) => first.startsWith(opener));
  if (!delimiters) return false;
  const [opener, closer] = delimiters;
  const rest = first.slice(opener.length);
  const lines = [];
  let line = startLine;
  if (rest.length >= closer.length && rest.endsWith(closer)) {
    lines.push(rest.slice(0, -closer.length));
  } else {
    lines.push(rest);
    for (;;) {
      line += 1;
      if (line >= endLine || state.sCount[line] < state.blkIndent) return false; // never closed (yet): plain text
      const text = lineText(line);
      if (text.endsWith(closer)) {
        lines.push(text.slice(0, -closer.length));
        break;
      }
      lines.push(text);
    }
  }
  const content = lines.join("\n");
  if (!content.trim()) return false;
  if (!silent) {
    const token = state.push("math_block", "", 0);
    token.content = content;
    token.map = [startLine, line + 1];
    token.block = true;
  }
  state.line = line + 1;
  return true;
}

export function mathPlugin(md) {
  const escape = md.utils.escapeHtml;
  md.inline.ruler.before("escape", "math_inline", mathInline);
  md.block.ruler.before("fence", "math_block", mathBlock, { alt: ["paragraph", "reference", "blockquote", "list"] });
  md.renderer.rules.math_inline = (tokens, idx) => `<span class="math-inline">${escape(tokens[idx].content)}</span>`;
  md.renderer.rules.math_display = (tokens, idx) => `<span class="math-display">${escape(tokens[idx].content)}</span>`;
  md.renderer.rules.math_block = (tokens, idx) =>
    `<p><span class="math-display">${escape(tokens[idx].content)}</span></p>\n`;
}

/**
 * Typeset the math spans under `root` with KaTeX. katex.render() builds DOM nodes (styles set through the CSSOM,
 * which the CSP allows), never an HTML string. Invalid TeX shows as its source, in the error colour.
 */
export function typesetMath(root) {
  for (const span of root.querySelectorAll(".markdown .math-inline, .markdown .math-display")) {
    if (span.dataset.tex !== undefined) continue;
    const tex = span.textContent;
    span.dataset.tex = tex;
    katex.render(tex, span, { displayMode: span.classList.contains("math-display"), throwOnError: false });
  }
}
