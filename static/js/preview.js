// The preview of an HTML or SVG code block: a panel beside the chat (over it on a phone) holding a sandboxed frame
// (/frames/preview/: its own policy, an opaque origin, no network). The frame gets the code by postMessage and
// shows it as a document of its own; it cannot reach this page, its cookies or the server.

import { strings } from "./util.js";

const FRAME_URL = "/frames/preview/";
let panel = null;
let opener = null;

function buildPanel() {
  panel = document.createElement("section");
  panel.className = "preview-panel";
  panel.setAttribute("aria-labelledby", "preview-title");
  const head = document.createElement("div");
  head.className = "preview-head";
  const title = document.createElement("h2");
  title.id = "preview-title";
  title.textContent = strings.preview;
  const note = document.createElement("span");
  note.className = "preview-note";
  note.textContent = strings.preview_note;
  const close = document.createElement("button");
  close.type = "button";
  close.className = "icon-btn preview-close";
  close.dataset.action = "close-preview";
  close.setAttribute("aria-label", strings.close_preview);
  close.textContent = "×";
  head.append(title, note, close);
  panel.append(head);
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closePreview();
  });
  document.body.append(panel);
}

/** Show `code` (HTML or SVG) in the preview panel; `from` gets the focus back when the panel closes. */
export function openPreview(code, from) {
  if (!panel) buildPanel();
  opener = from;
  panel.querySelector("iframe")?.remove();
  const frame = document.createElement("iframe");
  frame.className = "preview-frame";
  frame.setAttribute("sandbox", "allow-scripts");
  frame.title = strings.preview;
  const onMessage = (event) => {
    if (event.source !== frame.contentWindow || !event.data?.ready) return;
    window.removeEventListener("message", onMessage);
    frame.contentWindow.postMessage({ html: code }, "*");
  };
  window.addEventListener("message", onMessage);
  frame.src = FRAME_URL;
  panel.append(frame);
  panel.classList.add("is-open");
  document.body.classList.add("has-preview");
  panel.querySelector(".preview-close").focus();
}

export function closePreview() {
  if (!panel?.classList.contains("is-open")) return;
  panel.classList.remove("is-open");
  document.body.classList.remove("has-preview");
  panel.querySelector("iframe")?.remove();
  opener?.focus();
  opener = null;
}
