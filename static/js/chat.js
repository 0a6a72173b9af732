// The chat page: composer, streaming answers (SSE over fetch), stop/regenerate/edit, feedback, settings and the
// model picker, and the history sidebar (load on scroll, search, rename, archive, delete, folders), one module per
// concern under chat/. This entry point holds the page's one click handler and what runs when the page loads.
//
// Writes go through the REST API (/api/v1/...) with the session cookie and the CSRF header; the page's own
// few (start a chat, feedback) go to small JSON views under /c/. While an answer streams it is rendered with
// markdown.js (the server's sanitizer allow-list); finished turns are swapped for the server-rendered,
// sanitized partial (/c/<id>/turns/<turn_id>/).
//
// Native ES modules, loaded by the browser as they are (no build step); in production collectstatic rewrites their
// imports to the hashed file names (chatsite/storage.py).

import { chat, conversationId, setTemporary, temporary } from "./chat/page.js";
import { autosize, form, input, restoreDraft, updateSendState } from "./chat/composer.js";
import { setFeedback } from "./chat/feedback.js";
import { deleteFolder, newFolder, openFolder } from "./chat/folders.js";
import { markActive, observeMore, restoreSidebarScroll } from "./chat/history.js";
import { historyAction } from "./chat/history-actions.js";
import "./chat/keyboard.js";
import "./chat/live.js";
import "./chat/mcp-tools.js";
import "./chat/prompts.js";
import "./chat/assistants.js";
import "./chat/continuity.js";
import { regenerate, startEdit } from "./chat/sending.js";
import { setSettingsOpen, settingsForm } from "./chat/settings.js";
import { openShareDialog, shareDialog } from "./chat/share.js";
import { setSidebarOpen, updateSidebarInert } from "./chat/sidebar.js";
import { stop, streamAnswer } from "./chat/streaming.js";
import { addReadAloud, readAloud } from "./chat/voice.js";
import { loadEarlierTurns, switchVersion } from "./chat/thread.js";
import { undoMemory } from "./chat/tools.js";
import { updateTimes } from "./chat/times.js";
import { jumpToLatest, scrollToBottom, turnsEl } from "./chat/turns.js";
import { ANSWER_BODY_ACTIONS, answerBodyAction, enhanceAnswers } from "./answer-body.js";
import { copyText, flashLabel, strings } from "./util.js";

// --- One click handler for the whole page ------------------------------------------------------------------

document.addEventListener("click", async (event) => {
  const target = event.target.closest("[data-action]");
  if (!target) return;
  const action = target.dataset.action;
  const article = target.closest(".turn");
  if (action === "copy-turn") {
    const raw = article.querySelector("template.turn-raw").content.textContent;
    if (await copyText(raw)) flashLabel(target, strings.copied);
  } else if (ANSWER_BODY_ACTIONS.has(action)) {
    answerBodyAction(target);
  } else if (action === "edit") {
    startEdit(article);
  } else if (action === "regenerate") {
    regenerate(article);
  } else if (action === "version") {
    switchVersion(target);
  } else if (action === "feedback") {
    setFeedback(target);
  } else if (action === "stop") {
    stop();
  } else if (action === "open-sidebar") {
    setSidebarOpen(true);
  } else if (action === "close-sidebar") {
    setSidebarOpen(false);
  } else if (action === "toggle-settings") {
    setSettingsOpen(settingsForm.classList.contains("is-hidden"));
  } else if (action === "share") {
    openShareDialog();
  } else if (action === "close-share") {
    shareDialog.close();
  } else if (action === "copy-share") {
    if (await copyText(document.getElementById(target.dataset.copyField).value)) flashLabel(target, strings.copied);
  } else if (action === "suggest") {
    input.value = target.textContent.trim();
    autosize();
    updateSendState();
    form.requestSubmit();
  } else if (action === "open-folder") {
    openFolder(target);
  } else if (action === "new-folder") {
    newFolder();
  } else if (action === "delete-folder") {
    deleteFolder(target.closest(".folder-row"));
  } else if (action === "toggle-temporary") {
    setTemporary(target.getAttribute("aria-pressed") !== "true");
    target.setAttribute("aria-pressed", String(temporary));
    document.getElementById("temporary-note").classList.toggle("is-hidden", !temporary);
    chat.classList.toggle("is-temporary", temporary);
  } else if (action === "read-aloud") {
    readAloud(target);
  } else if (action === "jump-latest") {
    jumpToLatest();
  } else if (action === "undo-memory") {
    undoMemory(target);
  } else if (action === "shortcuts") {
    document.getElementById("shortcuts-dialog").showModal();
  } else if (["rename", "pin", "move", "archive", "delete"].includes(action) && target.closest(".history-item")) {
    historyAction(target);
  }
});

turnsEl.addEventListener("click", (event) => {
  const earlier = event.target.closest(".turns-earlier");
  if (earlier) loadEarlierTurns(earlier);
});

function followRunningAnswer() {
  // Reloaded, reopened or opened in a second tab while an answer is written: show it live.
  const running = turnsEl.querySelector(".turn-assistant[data-status=pending]");
  if (running && conversationId) streamAnswer(`conversations/${conversationId}/stream/`, null, { replaceEl: running });
}

enhanceAnswers(document);
addReadAloud(document);
updateTimes();
restoreDraft();
autosize();
updateSendState();
markActive();
restoreSidebarScroll();
observeMore();
updateSidebarInert();
scrollToBottom();
followRunningAnswer();

