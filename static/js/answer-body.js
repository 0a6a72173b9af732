// What the page adds to a rendered answer (chat page and shared page): math typeset with KaTeX, and a toolbar on
// each code block (its language, wrap lines, download, copy); Mermaid blocks are drawn as diagrams (the source one
// click away) and HTML or SVG blocks can be previewed in a sandboxed frame.

import { showDiagram } from "./diagrams.js";
import { typesetMath } from "./markdown-math.js";
import { closePreview, openPreview } from "./preview.js";
import { copyText, flashLabel, strings } from "./util.js";

// A downloaded code block is named after its language ("code.py"); others are .txt.
const EXTENSIONS = {
  bash: "sh", c: "c", cpp: "cpp", csharp: "cs", css: "css", go: "go", html: "html", java: "java", javascript: "js",
  js: "js", json: "json", kotlin: "kt", markdown: "md", mermaid: "mmd", php: "php", python: "py", py: "py",
  ruby: "rb", rust: "rs", sh: "sh", shell: "sh", sql: "sql", svg: "svg", swift: "swift", toml: "toml", ts: "ts",
  typescript: "ts", xml: "xml", yaml: "yaml", yml: "yml",
};

function toolButton(action, label, className = "code-tool") {
  const button = document.createElement("button");
  button.type = "button";
  button.className = className;
  button.dataset.action = action;
  button.textContent = label;
  return button;
}

export function codeLanguage(pre) {
  const codeClass = [...(pre.querySelector("code")?.classList || [])].find((c) => c.startsWith("language-"));
  return codeClass ? codeClass.slice("language-".length).toLowerCase() : "";
}

function canPreview(language, code) {
  return ["html", "htm", "xhtml", "svg"].includes(language) || (language === "xml" && /^\s*<svg[\s>]/.test(code));
}

function addCodeToolbar(pre) {
  const wrapper = document.createElement("div");
  wrapper.className = "code-block";
  const head = document.createElement("div");
  head.className = "code-head";
  const lang = document.createElement("span");
  lang.className = "code-lang";
  const language = codeLanguage(pre);
  lang.textContent = language;
  const tools = document.createElement("span");
  tools.className = "code-tools";
  if (language === "mermaid") {
    wrapper.classList.add("is-diagram");
    const source = toolButton("toggle-diagram-source", strings.show_source);
    source.setAttribute("aria-pressed", "false");
    tools.append(source);
  } else if (canPreview(language, pre.textContent)) {
    tools.append(toolButton("preview-code", strings.preview));
  }
  const wrap = toolButton("wrap-code", strings.wrap_lines);
  wrap.setAttribute("aria-pressed", "false");
  tools.append(wrap, toolButton("download-code", strings.download), toolButton("copy-code", strings.copy_code, "copy-code"));
  head.append(lang, tools);
  pre.tabIndex = 0; // a long line scrolls sideways: the keyboard can scroll it too
  pre.replaceWith(wrapper);
  wrapper.append(head, pre);
  if (language === "mermaid") showDiagram(wrapper);
}

/** Math and code-block toolbars for every rendered answer under `root` (each block once). */
export function enhanceAnswers(root) {
  typesetMath(root);
  for (const pre of root.querySelectorAll(".markdown pre")) {
    if (!pre.parentElement.classList.contains("code-block")) addCodeToolbar(pre);
  }
}

function codeText(block) {
  return block.querySelector("pre").textContent;
}

function download(block) {
  const name = `code.${EXTENSIONS[block.querySelector(".code-lang").textContent] || "txt"}`;
  const url = URL.createObjectURL(new Blob([codeText(block)], { type: "text/plain;charset=utf-8" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export const ANSWER_BODY_ACTIONS = new Set([
  "copy-code", "wrap-code", "download-code", "toggle-diagram-source", "preview-code", "close-preview",
]);

/** The click on a code block's toolbar button `target` (its data-action is one of ANSWER_BODY_ACTIONS). */
export async function answerBodyAction(target) {
  const block = target.closest(".code-block");
  const action = target.dataset.action;
  if (action === "copy-code") {
    if (await copyText(codeText(block))) flashLabel(target, strings.copied);
  } else if (action === "wrap-code") {
    const wrapped = target.getAttribute("aria-pressed") !== "true";
    target.setAttribute("aria-pressed", String(wrapped));
    block.classList.toggle("is-wrapped", wrapped);
  } else if (action === "download-code") {
    download(block);
  } else if (action === "toggle-diagram-source") {
    const source = target.getAttribute("aria-pressed") !== "true";
    target.setAttribute("aria-pressed", String(source));
    block.classList.toggle("shows-source", source);
  } else if (action === "preview-code") {
    openPreview(codeText(block), target);
  } else if (action === "close-preview") {
    closePreview();
  }
}
