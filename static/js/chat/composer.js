// The composer: the message box (autosize, character count, Enter to send), its files, its draft (kept per user and
// conversation in localStorage), its error line and the send/stop buttons.

import { apiBase, chat, conversationId, run, userId } from "./page.js";
import { setupAttachments } from "../attachments.js";
import { format, strings } from "../util.js";

export const form = document.getElementById("composer");
export const input = document.getElementById("composer-input");
const sendButton = document.getElementById("composer-send");
export const stopButton = document.getElementById("composer-stop");
const errorEl = document.getElementById("composer-error");
const countEl = document.getElementById("composer-count");
const maxChars = Number(chat.dataset.maxChars) || Infinity;

export const files = setupAttachments({
  apiBase, input, dropZone: chat, listEl: document.getElementById("composer-files"),
  fileInput: document.getElementById("composer-file"), button: document.getElementById("composer-attach"),
  showError: (message) => showError(message),
  onAction: () => settleError("next-action"),
  limits: {
    files: Number(chat.dataset.maxFiles) || Infinity,
    bytes: Number(chat.dataset.maxFileBytes) || Infinity,
    size: chat.dataset.maxFileSize,
  },
  onChange: () => updateSendState(),
});

// The error line says what went wrong only while it is true. Most errors are about the action just taken (a refused
// file, a folder name already used, a failed request): they go at the user's next action. "The chat is busy" lasts
// until the answer being written (here or in another window, followed here) ends.
let errorLasts = "";

/** `until`: "next-action" (default) or "answer-ends". */
export function showError(message, { until = "next-action" } = {}) {
  errorEl.textContent = message;
  errorEl.classList.remove("is-hidden");
  errorLasts = until;
}

export function hideError() {
  errorEl.textContent = "";
  errorEl.classList.add("is-hidden");
  errorLasts = "";
}

/** Something happened that makes errors lasting `until` it untrue: the next action, or the end of an answer. */
export function settleError(until) {
  if (errorLasts === until) hideError();
}

// The next action: a click on a control, a form sent (this runs first: an error the action causes shows after).
document.addEventListener("click", (event) => {
  if (event.target.closest("button, a, summary, select, input, [data-action]")) settleError("next-action");
}, true);
document.addEventListener("submit", () => settleError("next-action"), true);

// --- Drafts: kept per user and conversation in localStorage -------------------------------------------

export function draftKey() {
  return `chatsite:draft:${userId}:${conversationId || "new"}`;
}

export function saveDraft() {
  try {
    if (input.value.trim()) localStorage.setItem(draftKey(), input.value);
    else localStorage.removeItem(draftKey());
  } catch {
    // Storage full or unavailable: the draft just isn't kept.
  }
}

export function restoreDraft() {
  try {
    const draft = localStorage.getItem(draftKey());
    if (draft && !input.value) input.value = draft;
  } catch {
    // No storage: nothing to restore.
  }
}

// --- The message box -----------------------------------------------------------------------------------

export function autosize() {
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 240)}px`;
}

export function setBusy(busy) {
  run.busy = busy;
  chat.classList.toggle("is-busy", busy);
  // The composer stays usable while an answer is written: a follow-up can be typed meanwhile.
  sendButton.classList.toggle("is-hidden", busy);
  stopButton.classList.toggle("is-hidden", !busy);
  stopButton.disabled = false;
  if (!busy) {
    input.focus();
    updateSendState();
  }
}

export function tooLong() {
  return input.value.length > maxChars;
}

export function updateSendState() {
  // A message may be only files.
  sendButton.disabled = run.busy || (!input.value.trim() && !files.count()) || tooLong();
  updateCount();
}

export function updateCount() {
  // Nothing is ever cut: over the limit the message stays whole, with a warning, and cannot be sent.
  const count = input.value.length;
  const near = count > maxChars * 0.9;
  countEl.classList.toggle("is-hidden", !near);
  countEl.classList.toggle("is-over", tooLong());
  if (!near) {
    countEl.textContent = "";
  } else if (tooLong()) {
    countEl.textContent = format(strings.too_long, {
      count: count.toLocaleString(), limit: maxChars.toLocaleString(), over: (count - maxChars).toLocaleString(),
    });
  } else {
    countEl.textContent = format(strings.char_count, { count: count.toLocaleString(), limit: maxChars.toLocaleString() });
  }
  input.setAttribute("aria-invalid", String(tooLong()));
}

input.addEventListener("input", () => {
  autosize();
  saveDraft();
  updateSendState();
});

// Enter sends; Shift+Enter is a new line; Ctrl/Cmd+Enter sends too (the same in the edit box).
export function isSendKey(event) {
  // isComposing: Enter also confirms a Korean/Japanese IME composition; that must not send.
  return event.key === "Enter" && !event.shiftKey && !event.isComposing;
}

input.addEventListener("keydown", (event) => {
  if (isSendKey(event)) {
    event.preventDefault();
    form.requestSubmit();
  }
});
