// Code an answer wrote without a fence, fenced before the markdown is rendered: the same rules as the server's
// (conversations/markdown_code.py), so a small model's bare program looks the same while it streams and once stored.

const FENCE = /^ {0,3}(```|~~~)/;
const STRONG = new RegExp(`^\\s*(?:${[
  String.raw`(?:async\s+)?def\s+\w+\s*\(.*\)\s*(?:->.*)?:\s*$`,
  String.raw`class\s+\w+.*:\s*$`,
  String.raw`import\s+[\w.]+(?:\s+as\s+\w+)?(?:\s*,\s*[\w.]+)*\s*;?\s*$`,
  String.raw`from\s+[\w.]+\s+import\s+\S.*$`,
  String.raw`(?:if|elif|while|for|with|except)\b.*:\s*$`,
  String.raw`(?:else|try|finally)\s*:\s*$`,
  String.raw`return\b.*$`,
  String.raw`print\(.*\)\s*$`,
  String.raw`(?:function\s+\w+|const\s+\w+|let\s+\w+|var\s+\w+)\b.*$`,
  String.raw`(?:public|private|protected|static)\s+\w.*$`,
  String.raw`#include\s*[<"].*$`,
  String.raw`#!\/.*$`,
  String.raw`[\w.\[\]]+\s*(?:=|\+=|-=)\s*\S.*$`,
  String.raw`[\w.]+\(.*\)\s*;?\s*$`,
  String.raw`.*[;{]\s*$`,
  String.raw`[})\]]+[;,)]*\s*$`,
].join("|")})`);
const COMMENT = /^\s*(?:#|\/\/)/;
const INDENTED = /^(?: {2,}|\t)\S/;
const LANGUAGES = [
  ["python", /^\s*(?:def |class |import |from \S+ import |print\(|elif )/m],
  ["javascript", /^\s*(?:function |const |let |var )|console\./m],
  ["bash", /^#!\/bin\/(?:ba)?sh|^\s*echo /m],
];

function kind(line) {
  // S: only code reads like this; W: code or a heading/continuation (counts inside a run); B: blank; P: prose.
  if (!line.trim()) return "B";
  if (STRONG.test(line) && !/^\s*(?:- |\* |> )/.test(line)) return "S";
  if (COMMENT.test(line) || INDENTED.test(line)) return "W";
  return "P";
}

function language(lines) {
  const text = lines.join("\n");
  return LANGUAGES.find(([, pattern]) => pattern.test(text))?.[0] || "";
}

/** `text` with each run of bare code lines put in a fence (unchanged when there is none). */
export function fenceBareCode(text) {
  const out = [];
  const run = [];
  let inFence = false;
  const flush = () => {
    let end = run.length;
    while (end && !run[end - 1].trim()) end -= 1;
    const code = run.slice(0, end);
    const blanks = run.slice(end); // blank lines after the code stay outside its fence
    // A run that starts indented continues the paragraph or list item above it: not code of its own.
    if (code.filter((line) => kind(line) === "S").length >= 2 && !INDENTED.test(code[0])) {
      out.push("```" + language(code), ...code, "```");
    } else {
      out.push(...code);
    }
    out.push(...blanks);
    run.length = 0;
  };
  for (const line of text.split("\n")) {
    if (FENCE.test(line)) {
      flush();
      inFence = !inFence;
      out.push(line);
    } else if (inFence) {
      out.push(line);
    } else {
      const lineKind = kind(line);
      if (lineKind === "P") {
        flush();
        out.push(line);
      } else if (lineKind === "B" && !run.length) {
        out.push(line);
      } else {
        run.push(line);
      }
    }
  }
  flush();
  return out.join("\n");
}
