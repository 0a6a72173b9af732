// Every window up to date: the user's event stream (/c/events/, conversations/notifications.py) played into this
// page. New chats, titles, renames, pins, projects (made, renamed, deleted), archiving and deletions show in the
// sidebar and the header; an answer started in another window or device is followed live here when its chat is open;
// a chat deleted elsewhere (or swept away as an expired temporary chat) says so, and so does an account closed
// elsewhere. The browser's EventSource reconnects by itself (with the last event's id); a `resync` event (the server
// could not tell what was missed) reloads the list, the title and the open chat.

import { chat, conversationId, deletedHere, run } from "./page.js";
import { api } from "./api.js";
import { hideError } from "./composer.js";
import { refreshTitle, setTitle } from "./header.js";
import { forgetFolder, renameFolder, showChatProject, showFolder } from "./folders.js";
import {
  bumpHistoryItem, historyEl, historyItem, refreshHistory, removeHistoryItem, setHistoryTitle,
} from "./history.js";
import { streamAnswer } from "./streaming.js";
import { reloadThread } from "./thread.js";
import { turnsEl } from "./turns.js";
import { strings } from "../util.js";

const FOLLOW_ATTEMPTS = 5;
const FOLLOW_RETRY_MS = 400;

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function runningAnswer() {
  return turnsEl.querySelector(".turn-assistant[data-status=pending]");
}

let following = false;

/** Show the open chat as the server has it and follow its running answer, if any (started in another window). */
export async function followAnswerElsewhere() {
  if (following || !conversationId) return;
  following = true;
  try {
    // This window's own answer (or a follow already under way) is shown already.
    for (let waited = 0; run.busy && waited < 10; waited += 1) await sleep(200);
    if (run.busy) return;
    // The answer's worker registers it a moment after the event: a follow that finds nothing yet tries again.
    for (let attempt = 0; attempt < FOLLOW_ATTEMPTS && !run.busy; attempt += 1) {
      await reloadThread();
      const running = runningAnswer();
      if (!running) return;
      await streamAnswer(`conversations/${conversationId}/stream/`, null, { replaceEl: running });
      if (!runningAnswer()) return;
      await sleep(FOLLOW_RETRY_MS);
    }
  } catch {
    // The chat could not be loaded: it shows as it is on the next load.
  } finally {
    following = false;
  }
}

function disableComposer() {
  chat.classList.add("is-gone");
  hideError();
  for (const control of document.querySelectorAll("#composer textarea, #composer button")) control.disabled = true;
}

function showGone(reason) {
  // Deleted in another window, or a temporary chat past its time: nothing can be sent to it any more.
  if (chat.classList.contains("is-gone")) return; // told already (a chat being deleted can be swept up too)
  const gone = document.getElementById("chat-gone");
  if (reason === "expired") gone.querySelector(".chat-gone-text").textContent = strings.chat_expired;
  gone.classList.remove("is-hidden");
  disableComposer();
}

function showAccountClosed(source) {
  // Closed in another window: this one's session ended with it, and the chats are being deleted. Say so, and show
  // nothing that would only fail.
  source.close();
  clearTimeout(expiryTimer);
  document.getElementById("chat-gone").classList.add("is-hidden");
  document.getElementById("account-closed").classList.remove("is-hidden");
  disableComposer();
  historyEl.replaceChildren();
  document.getElementById("folder-list").replaceChildren();
  chat.dataset.live = "closed";
}

function changed(summary) {
  // The row moves between groups or lists (pinned, a project, the archive): the list is reloaded as the server has
  // it. Otherwise only its title changes, here and in the header.
  const item = historyItem(summary.id);
  const moved = item
    ? (item.dataset.pinned === "1") !== summary.pinned
      || (item.dataset.folder || "") !== String(summary.project_id ?? "")
      || (item.dataset.archived === "1") !== summary.archived
    : summary.pinned && !summary.archived;
  if (moved) refreshHistory();
  else setHistoryTitle(summary.id, summary.title);
  if (summary.id === conversationId) {
    if (summary.title) setTitle(summary.title);
    showChatProject(summary.project_id);
  }
}

const handlers = {
  "conversation.created": ({ conversation }) => {
    if (!conversation.temporary) bumpHistoryItem(conversation.id, conversation.title);
  },
  "conversation.updated": ({ conversation }) => changed(conversation),
  "conversation.deleted": ({ conversation_id: id, reason }) => {
    removeHistoryItem(id);
    if (id === conversationId && !deletedHere.has(id)) showGone(reason);
  },
  "project.created": ({ project }) => showFolder(project),
  "project.updated": ({ project }) => renameFolder(project),
  "project.deleted": ({ project_id: id, chats_deleted: chatsDeleted }) => forgetFolder(id, { chatsDeleted }),
  "answer.started": ({ conversation, turn_id: turnId }) => {
    if (!conversation.temporary) bumpHistoryItem(conversation.id, conversation.title);
    changed(conversation);
    const shown = turnsEl.querySelector(`.turn[data-turn-id="${turnId}"]`);
    if (conversation.id === conversationId && !run.busy && !shown) followAnswerElsewhere();
  },
  resync: () => {
    refreshHistory();
    if (!conversationId) return;
    refreshTitle();
    if (!run.busy) followAnswerElsewhere();
  },
};

if (window.EventSource && chat.dataset.eventsUrl) {
  const source = new EventSource(chat.dataset.eventsUrl);
  // The stream's state on the chat element: "listening" once the server listens for this window, nothing missed.
  source.addEventListener("listening", () => {
    chat.dataset.live = "listening";
  });
  source.addEventListener("error", () => {
    chat.dataset.live = "reconnecting";
  });
  source.addEventListener("account.closed", () => showAccountClosed(source));
  for (const [name, handle] of Object.entries(handlers)) {
    source.addEventListener(name, (event) => {
      try {
        handle(JSON.parse(event.data));
      } catch {
        // A malformed event changes nothing.
      }
    });
  }
}

// A temporary chat open here is gone for good when its time is up (every route answers 404 from then on; housekeeping
// deletes it later, and its event may not reach this window without Redis): say so then. The page's clock may be
// off, so the server is asked first; a chat still there is asked about again a minute later.
const EXPIRY_RECHECK_MS = 60_000;
const MAX_TIMER_MS = 2 ** 31 - 1; // a longer setTimeout fires at once
let expiryTimer = null;

function watchExpiry(delay) {
  clearTimeout(expiryTimer);
  const at = Date.parse(chat.dataset.deleteAfter || "");
  if (!conversationId || Number.isNaN(at)) return;
  const wait = delay ?? Math.max(0, at - Date.now()) + 1000;
  expiryTimer = setTimeout(async () => {
    if (wait > MAX_TIMER_MS) return watchExpiry();
    try {
      await api("GET", `conversations/${conversationId}/`);
      watchExpiry(EXPIRY_RECHECK_MS);
    } catch (error) {
      if (error.status === 404) showGone("expired");
      else watchExpiry(EXPIRY_RECHECK_MS); // offline or signed out: asked again later
    }
  }, Math.min(wait, MAX_TIMER_MS));
}

watchExpiry();
chat.addEventListener("chat:expires", () => watchExpiry());

// This window was told the chat is busy (an answer from another window it had not heard of): follow that answer,
// so that the error goes when it ends.
chat.addEventListener("chat:busy", () => followAnswerElsewhere());
