// The thread as the server renders it: reloaded after switching to another version of a message, and earlier
// messages of a long chat loaded on demand.

import { chat, conversationId, conversationUrl, run } from "./page.js";
import { api, fragment } from "./api.js";
import { hideError, showError } from "./composer.js";
import { scrollEl, turnsEl } from "./turns.js";
import { enhanceAnswers } from "../answer-body.js";
import { strings } from "../util.js";

export async function reloadThread(focusTurnId = null) {
  // The newest page of the branch shown, as the server renders it (after a switch, or a refused edit).
  const response = await fetch(`${conversationUrl(conversationId)}turns/`, { credentials: "same-origin" });
  if (!response.ok) throw new Error(strings.load_failed);
  const thread = fragment(await response.text());
  enhanceAnswers(thread);
  turnsEl.replaceChildren(thread);
  chat.classList.toggle("has-turns", turnsEl.querySelector(".turn") !== null);
  const focused = focusTurnId && turnsEl.querySelector(`.turn[data-turn-id="${focusTurnId}"]`);
  if (focused) {
    focused.scrollIntoView({ block: "nearest" });
    focused.querySelector('[data-action="version"]:not([disabled])')?.focus();
  }
}

export async function switchVersion(button) {
  if (run.busy || !conversationId || !button.dataset.turnTarget) return;
  const target = button.dataset.turnTarget;
  hideError();
  try {
    await api("POST", `conversations/${conversationId}/switch/`, { turn_id: Number(target) });
    await reloadThread(target);
  } catch {
    showError(strings.switch_failed);
  }
}

export async function loadEarlierTurns(button) {
  if (button.dataset.loading) return;
  button.dataset.loading = "1";
  try {
    const response = await fetch(`${conversationUrl(conversationId)}turns/?before=${button.dataset.before}`, {
      credentials: "same-origin",
    });
    if (!response.ok) throw new Error();
    const earlier = fragment(await response.text());
    enhanceAnswers(earlier);
    // Keep the reader's place: the page grows above what they are looking at.
    const fromBottom = scrollEl.scrollHeight - scrollEl.scrollTop;
    button.replaceWith(earlier);
    scrollEl.scrollTop = scrollEl.scrollHeight - fromBottom;
  } catch {
    delete button.dataset.loading;
    showError(strings.load_failed);
  }
}
