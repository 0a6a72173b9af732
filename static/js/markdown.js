// Answers rendered while they stream: markdown-it with the server's options (conversations/markdown.py), then
// DOMPurify held to the server's allow-list, which the page receives as JSON (#markdown-rules), so the two
// cannot drift apart. Math is marked up by the same rules as on the server (markdown-math.js). Code is not
// highlighted here; the server's render replaces this one when the answer is stored.

import markdownit from "../vendor/markdown-it.esm.min.js";
import DOMPurify from "../vendor/purify.es.js";
import { fenceBareCode } from "./markdown-code.js";
import { mathPlugin } from "./markdown-math.js";

const rules = JSON.parse(document.getElementById("markdown-rules")?.textContent || "null");
const ALIGN_CLASSES = { "text-align:left": "align-left", "text-align:center": "align-center", "text-align:right": "align-right" };

// Same-origin relative URLs and inline data: images only, as is_safe_image_src() on the server.
export function isSafeImageSrc(src) {
  const value = src.trim();
  if (/^data:image\//i.test(value)) return true;
  if (value.startsWith("//") || value.startsWith("\\")) return false;
  return !/^[a-z][a-z0-9+.-]*:/i.test(value);
}

function isSafeLink(href) {
  const match = href.trim().match(/^([a-z][a-z0-9+.-]*):/i);
  return Boolean(match) && rules.link_schemes.includes(match[1].toLowerCase());
}

const md = markdownit("commonmark", { html: false, linkify: false, typographer: false })
  .enable(["table", "strikethrough"])
  .use(mathPlugin);
const renderImage = md.renderer.rules.image;
md.renderer.rules.image = (tokens, idx, options, env, self) => {
  // Off-site images become their alt text: the browser is never asked to fetch them.
  const token = tokens[idx];
  if (isSafeImageSrc(token.attrGet("src") || "")) return renderImage(tokens, idx, options, env, self);
  const alt = self.renderInlineAsText(token.children || [], options, env);
  return alt ? md.utils.escapeHtml(`[${alt}]`) : "";
};
md.core.ruler.push("alignment_to_classes", (state) => {
  // Tables align cells with style="" (blocked by the CSP): classes instead, as on the server.
  for (const token of state.tokens) {
    if (token.type !== "th_open" && token.type !== "td_open") continue;
    const style = (token.attrGet("style") || "").replace(/ /g, "");
    if (!style) continue;
    token.attrs = token.attrs.filter(([name]) => name !== "style");
    if (ALIGN_CLASSES[style]) token.attrSet("class", ALIGN_CLASSES[style]);
  }
});

if (rules) {
  DOMPurify.addHook("uponSanitizeAttribute", (node, data) => {
    const tag = node.nodeName.toLowerCase();
    const allowed = rules.attributes[tag] || [];
    if (!allowed.includes(data.attrName)) data.keepAttr = false;
    else if (tag === "a" && data.attrName === "href") data.keepAttr = isSafeLink(data.attrValue);
    else if (tag === "img" && data.attrName === "src") data.keepAttr = isSafeImageSrc(data.attrValue);
    data.forceKeepAttr = data.keepAttr ? true : undefined;
  });
  DOMPurify.addHook("afterSanitizeAttributes", (node) => {
    if (node.nodeName.toLowerCase() === "a") node.setAttribute("rel", rules.link_rel);
  });
}

const purifyConfig = rules && {
  ALLOWED_TAGS: rules.tags,
  ALLOWED_ATTR: [...new Set(Object.values(rules.attributes).flat())],
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: false,
  RETURN_DOM_FRAGMENT: true,
};

/** Markdown source (a partial answer) -> a sanitized DocumentFragment. */
export function renderMarkdown(text) {
  return DOMPurify.sanitize(md.render(fenceBareCode(text || "")), purifyConfig);
}

export const canRender = Boolean(rules) && DOMPurify.isSupported;
