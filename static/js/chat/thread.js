// The thread as the server renders it: reloaded after switching to another version of a message, and earlier
// messages of a long chat loaded on demand.

import { chat, conversationId, conversationUrl, run } from "./page.js";
import { api, fragment } from "./api.js";
import { hideError, showError } from "./composer.js";
import { scrollEl, turnsEl } from "./turns.js";
import { addReadAloud } from "./voice.js";
import { enhanceAnswers } from "../answer-body.js";
import { strings } from "../util.js";

export async function reloadThread(focusTurnId = null) {
  // The newest page of the branch shown, as the server renders it (after a switch, or a refused edit).
  const response = await fetch(`${conversationUrl(conversationId)}turns/`, { credentials: "same-origin" });
  if (!response.ok) throw new Error(strings.load_failed);
  const thread = fragment(await response.text());
  enhanceAnswers(thread);
  addReadAloud(thread);
  turnsEl.replaceChildren(thread);
  chat.classList.toggle("has-turns", turnsEl.querySelector(".turn") !== null);
  const focused = focusTurnId && turnsEl.querySelector(`.turn[data-turn-id="${focusTurnId}"]`);
  if (focused) {
    focused.scrollIntoView({ block: "nearest" });
    focused.querySelector('[data-action="version"]:not([disabled])')?.focus();
  }
}

// Where the reader was below each version ({turn id: last turn shown below it}, per chat, in localStorage): coming
// back to a version shows the branch as they left it, not its newest answers (the server shows the branch through
// the turn it is given, down to the newest turns below it, so the page gives it the last turn the reader saw).
function placesKey() {
  return `chatsite:branch-places:${conversationId}`;
}

function readPlaces() {
  try {
    return JSON.parse(localStorage.getItem(placesKey()) || "{}");
  } catch {
    return {};
  }
}

function rememberPlaces() {
  const shown = [...turnsEl.querySelectorAll(".turn[data-turn-id]")].map((turn) => turn.dataset.turnId);
  const last = shown.at(-1);
  if (!last) return;
  const places = readPlaces();
  for (const id of shown) places[id] = last;
  try {
    localStorage.setItem(placesKey(), JSON.stringify(places));
  } catch {
    // No storage: coming back to a version shows the newest answers below it.
  }
}

export async function switchVersion(button) {
  if (run.busy || !conversationId || !button.dataset.turnTarget) return;
  const target = button.dataset.turnTarget;
  hideError();
  rememberPlaces();
  const place = readPlaces()[target];
  try {
    try {
      await api("POST", `conversations/${conversationId}/switch/`, { turn_id: Number(place || target) });
    } catch (error) {
      if (!place) throw error;
      await api("POST", `conversations/${conversationId}/switch/`, { turn_id: Number(target) });
    }
    await reloadThread(target);
    rememberPlaces();
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
    addReadAloud(earlier);
    // Keep the reader's place: the page grows above what they are looking at.
    const fromBottom = scrollEl.scrollHeight - scrollEl.scrollTop;
    button.replaceWith(earlier);
    scrollEl.scrollTop = scrollEl.scrollHeight - fromBottom;
  } catch {
    delete button.dataset.loading;
    showError(strings.load_failed);
  }
}
