// The turns on the page: new ones while a message is sent, the answer rendered as markdown while it streams, then
// swapped for the server's rendered (sanitized) turn, which gets its code-block toolbars (answer-body.js).

import { conversationId, conversationUrl } from "./page.js";
import { fragment } from "./api.js";
import { enhanceAnswers } from "../answer-body.js";
import { canRender, renderMarkdown } from "../markdown.js";
import { typesetMath } from "../markdown-math.js";
import { addReadAloud } from "./voice.js";
import { strings } from "../util.js";

export const turnsEl = document.getElementById("turns");
export const scrollEl = document.getElementById("turns-scroll");

export function nearBottom() {
  return scrollEl.scrollHeight - scrollEl.scrollTop - scrollEl.clientHeight < 120;
}

export function scrollToBottom() {
  scrollEl.scrollTop = scrollEl.scrollHeight;
}

// "Jump to the latest" shows while the reader is scrolled away from the end of the chat (say, during an answer).
const jumpButton = document.getElementById("jump-latest");
scrollEl.addEventListener("scroll", () => {
  jumpButton.classList.toggle("is-hidden", nearBottom());
}, { passive: true });

export function jumpToLatest() {
  scrollToBottom();
  document.getElementById("composer-input").focus();
}

export function newTurnElement(role, text) {
  const article = document.createElement("article");
  article.className = `turn turn-${role} status-${role === "user" ? "complete" : "streaming"}`;
  article.dataset.role = role;
  const body = document.createElement("div");
  body.className = role === "user" ? "turn-body user-text" : "turn-body streaming-text";
  body.textContent = text;
  const raw = document.createElement("template");
  raw.className = "turn-raw";
  raw.content.textContent = text;
  if (role === "assistant") {
    const avatar = document.createElement("div");
    avatar.className = "turn-avatar";
    avatar.setAttribute("aria-hidden", "true");
    avatar.textContent = "AI";
    const main = document.createElement("div");
    main.className = "turn-main";
    main.append(body);
    if (!text) {
      const thinking = document.createElement("span");
      thinking.className = "thinking";
      thinking.textContent = strings.thinking;
      body.append(thinking);
    }
    article.append(avatar, main, raw);
  } else {
    article.append(body, raw);
  }
  return article;
}

function setTurnText(article, text) {
  article.querySelector(".turn-body").textContent = text;
  article.querySelector("template.turn-raw").content.textContent = text;
}

// While streaming: the partial answer rendered as markdown, at most once a frame.
const pendingRenders = new Map();

export function renderStreaming(article, text) {
  article.querySelector("template.turn-raw").content.textContent = text;
  if (!canRender) {
    article.querySelector(".turn-body").textContent = text;
    return;
  }
  const first = !pendingRenders.size;
  pendingRenders.set(article, text);
  if (!first) return;
  requestAnimationFrame(() => {
    for (const [element, latest] of pendingRenders) {
      const body = element.querySelector(".turn-body");
      body.classList.add("markdown");
      body.replaceChildren(renderMarkdown(latest));
      typesetMath(body);
    }
    pendingRenders.clear();
  });
}

export async function replaceWithServerTurn(article, turnId) {
  pendingRenders.delete(article);
  const response = await fetch(`${conversationUrl(conversationId)}turns/${turnId}/`, {
    credentials: "same-origin",
  });
  if (!response.ok) throw new Error(strings.load_failed);
  const rendered = fragment(await response.text()).firstElementChild;
  enhanceAnswers(rendered);
  addReadAloud(rendered);
  article.replaceWith(rendered);
  return rendered;
}

export function markInterrupted(article, text, message) {
  pendingRenders.delete(article);
  article.classList.remove("status-streaming");
  article.classList.add("status-failed");
  setTurnText(article, text);
  const note = document.createElement("div");
  note.className = "turn-error";
  note.setAttribute("role", "alert");
  const label = document.createElement("span");
  label.textContent = message;
  const retry = document.createElement("button");
  retry.type = "button";
  retry.className = "btn btn-small action-retry";
  retry.dataset.action = "regenerate";
  retry.textContent = strings.retry;
  note.append(label, retry);
  (article.querySelector(".turn-main") || article).append(note);
}

export function finishLocally(article, text) {
  pendingRenders.delete(article);
  article.classList.remove("status-streaming");
  article.classList.add("status-complete");
  setTurnText(article, text);
}
