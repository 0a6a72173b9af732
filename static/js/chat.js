// The chat page: composer, streaming answers (SSE over fetch), stop/regenerate/edit, feedback, settings,
// and the history sidebar (load on scroll, search, rename, archive, delete).
//
// Writes go through the REST API (/api/v1/...) with the session cookie and the CSRF header; the page's own
// few (start a chat, feedback) go to small JSON views under /c/. While an answer streams it is rendered with
// markdown.js (the server's sanitizer allow-list); finished turns are swapped for the server-rendered,
// sanitized partial (/c/<id>/turns/<turn_id>/).

import { canRender, renderMarkdown } from "./markdown.js";
import { attachmentList, setupAttachments } from "./attachments.js";
import { copyText, csrfToken, flashLabel, format, strings } from "./util.js";

const chat = document.getElementById("chat");
const turnsEl = document.getElementById("turns");
const scrollEl = document.getElementById("turns-scroll");
const form = document.getElementById("composer");
const input = document.getElementById("composer-input");
const sendButton = document.getElementById("composer-send");
const stopButton = document.getElementById("composer-stop");
const errorEl = document.getElementById("composer-error");
const titleEl = document.getElementById("chat-title");
const historyEl = document.getElementById("history");
const searchInput = document.getElementById("history-search");
const settingsForm = document.getElementById("chat-settings");
const modelPicker = document.getElementById("model-picker"); // absent when only one model is offered
const dialog = document.getElementById("dialog");
const sidebar = document.getElementById("sidebar");
const countEl = document.getElementById("composer-count");
const maxChars = Number(chat.dataset.maxChars) || Infinity;
const narrowScreen = window.matchMedia("(max-width: 768px)");

const apiBase = chat.dataset.apiBase;
const files = setupAttachments({
  apiBase, form, input, dropZone: chat, listEl: document.getElementById("composer-files"),
  fileInput: document.getElementById("composer-file"), button: document.getElementById("composer-attach"),
  showError: (message) => showError(message),
});
const userId = chat.dataset.userId;
let conversationId = chat.dataset.conversationId || "";
let showArchived = false;
let currentFolder = "";
let temporary = false;

// The answer being streamed; `current` tells a finished stream's cleanup from a newer one's.
const run = { busy: false, controller: null, stopRequested: false, current: null };

// --- Small helpers ---------------------------------------------------------------------------------

async function api(method, path, body) {
  return request(method, apiBase + path, body);
}

async function request(method, url, body) {
  const response = await fetch(url, {
    method,
    credentials: "same-origin",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/json",
      "X-CSRFToken": csrfToken(),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await apiError(response);
  if (response.status === 204) return null;
  return response.json();
}

async function apiError(response) {
  let message = strings.send_failed;
  let code = "";
  try {
    const payload = await response.json();
    message = payload?.error?.message || message;
    code = payload?.error?.code || "";
  } catch {
    // Not JSON (a proxy error page): keep the generic message.
  }
  if (response.status === 429 && code === "throttled") {
    // DRF's own wording ("Request was throttled. Expected available in 42 seconds.") is not for people.
    const seconds = Math.ceil(Number(response.headers.get("Retry-After")));
    message = seconds > 0 ? format(strings.throttled_wait, { seconds }) : strings.throttled;
  }
  const error = new Error(message);
  error.status = response.status;
  return error;
}

function showError(message) {
  errorEl.textContent = message;
  errorEl.classList.remove("is-hidden");
}

function hideError() {
  errorEl.textContent = "";
  errorEl.classList.add("is-hidden");
}

function fragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html;
  return template.content;
}

function nearBottom() {
  return scrollEl.scrollHeight - scrollEl.scrollTop - scrollEl.clientHeight < 120;
}

function scrollToBottom() {
  scrollEl.scrollTop = scrollEl.scrollHeight;
}

function conversationUrl(id) {
  return `/c/${id}/`;
}

// --- Drafts: kept per user and conversation in localStorage -------------------------------------------

function draftKey() {
  return `chatsite:draft:${userId}:${conversationId || "new"}`;
}

function saveDraft() {
  try {
    if (input.value.trim()) localStorage.setItem(draftKey(), input.value);
    else localStorage.removeItem(draftKey());
  } catch {
    // Storage full or unavailable: the draft just isn't kept.
  }
}

function restoreDraft() {
  try {
    const draft = localStorage.getItem(draftKey());
    if (draft && !input.value) input.value = draft;
  } catch {
    // No storage: nothing to restore.
  }
}

// --- Composer ----------------------------------------------------------------------------------------

function autosize() {
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 240)}px`;
}

function setBusy(busy) {
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

function tooLong() {
  return input.value.length > maxChars;
}

function updateSendState() {
  sendButton.disabled = run.busy || !input.value.trim() || tooLong();
  updateCount();
}

function updateCount() {
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
function isSendKey(event) {
  // isComposing: Enter also confirms a Korean/Japanese IME composition; that must not send.
  return event.key === "Enter" && !event.shiftKey && !event.isComposing;
}

input.addEventListener("keydown", (event) => {
  if (isSendKey(event)) {
    event.preventDefault();
    form.requestSubmit();
  }
});

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (tooLong()) {
    updateCount();
    input.focus();
    return;
  }
  send(input.value);
});

// --- Turns -------------------------------------------------------------------------------------------

function newTurnElement(role, text) {
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

function renderStreaming(article, text) {
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
    }
    pendingRenders.clear();
  });
}

function enhance(root) {
  for (const pre of root.querySelectorAll(".markdown pre")) {
    if (pre.parentElement.classList.contains("code-block")) continue;
    const wrapper = document.createElement("div");
    wrapper.className = "code-block";
    const head = document.createElement("div");
    head.className = "code-head";
    const lang = document.createElement("span");
    const codeClass = [...(pre.querySelector("code")?.classList || [])].find((c) => c.startsWith("language-"));
    lang.textContent = codeClass ? codeClass.slice("language-".length) : "";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy-code";
    button.dataset.action = "copy-code";
    button.textContent = strings.copy_code;
    head.append(lang, button);
    pre.replaceWith(wrapper);
    wrapper.append(head, pre);
  }
}

async function replaceWithServerTurn(article, turnId) {
  pendingRenders.delete(article);
  const response = await fetch(`${conversationUrl(conversationId)}turns/${turnId}/`, {
    credentials: "same-origin",
  });
  if (!response.ok) throw new Error(strings.load_failed);
  const rendered = fragment(await response.text()).firstElementChild;
  enhance(rendered);
  article.replaceWith(rendered);
  return rendered;
}

function markInterrupted(article, text, message) {
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

function finishLocally(article, text) {
  pendingRenders.delete(article);
  article.classList.remove("status-streaming");
  article.classList.add("status-complete");
  setTurnText(article, text);
}

// --- Server-sent events over fetch ---------------------------------------------------------------------

async function* readEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      let id = 0;
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("id:")) id = Number(line.slice(3).trim()) || 0;
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { name, id, data: JSON.parse(data.join("\n")) };
    }
  }
}

/**
 * POST to a streaming endpoint and play its events into the page.
 * `userEl`: the optimistic user turn (removed again if the server refuses before storing anything).
 * `replaceEl`: the answer a new version is written for (its place is taken once the server has stored it).
 * `onRefused`: called instead of putting the draft back when the server refuses before storing anything.
 */
async function streamAnswer(path, body, { userEl = null, replaceEl = null, draft = "", onRefused = null } = {}) {
  // `body` null: follow an answer already being written (GET), from its first event.
  hideError();
  setBusy(true);
  if (body !== null) await modelSaving;
  const thisRun = {};
  run.current = thisRun;
  run.stopRequested = false;
  run.controller = new AbortController();
  // The composer is released as soon as the answer is stored, even if a title event is still to come.
  const release = () => {
    if (run.current !== thisRun) return;
    run.current = null;
    run.controller = null;
    setBusy(false);
  };
  let answerEl = null;
  let text = "";
  let finished = false;
  try {
    let response;
    try {
      const following = body === null;
      response = await fetch(apiBase + path, {
        method: following ? "GET" : "POST",
        credentials: "same-origin",
        headers: following
          ? { Accept: "text/event-stream" }
          : { "Content-Type": "application/json", Accept: "text/event-stream", "X-CSRFToken": csrfToken() },
        body: following ? undefined : JSON.stringify({ ...body, stream: true }),
        signal: run.controller.signal,
      });
    } catch {
      throw Object.assign(new Error(strings.send_failed), { beforeStream: true });
    }
    if (!response.ok) throw Object.assign(await apiError(response), { beforeStream: true });
    if (response.status === 204 && replaceEl) {
      // Nothing is being written any more: show the answer as stored.
      finished = true;
      await replaceWithServerTurn(replaceEl, replaceEl.dataset.turnId).catch(() => {});
      return;
    }

    let lastId = 0;
    const play = async (stream) => {
      for await (const { name, id, data } of readEvents(stream)) {
        if (id) lastId = id;
        if (name === "turn") {
          if (userEl && data.user_turn) userEl.dataset.turnId = data.user_turn.id;
          answerEl = newTurnElement("assistant", "");
          answerEl.dataset.turnId = data.assistant_turn.id;
          if (replaceEl) replaceEl.replaceWith(answerEl);
          else turnsEl.append(answerEl);
          scrollToBottom();
        } else if (name === "error" && !answerEl && replaceEl) {
          // Followed an answer that was interrupted (its server stopped): show it as stored, failed.
          finished = true;
          await replaceWithServerTurn(replaceEl, data.assistant_turn.id).catch(() => {});
          release();
        } else if (name === "delta") {
          const follow = nearBottom();
          text += data.text;
          renderStreaming(answerEl, text);
          if (follow) requestAnimationFrame(scrollToBottom);
        } else if (name === "done" || name === "error") {
          finished = true;
          try {
            answerEl = await replaceWithServerTurn(answerEl, data.assistant_turn.id);
          } catch {
            // The answer is stored; if its rendered form can't be fetched, show what arrived as text.
            const failed = name === "error" || data.assistant_turn.status !== "complete";
            if (failed) markInterrupted(answerEl, text, data.error?.message || strings.stopped);
            else finishLocally(answerEl, text);
          }
          release();
          // The optimistic user bubble becomes the server's version too (with its copy and edit buttons).
          if (userEl?.dataset.turnId) await replaceWithServerTurn(userEl, userEl.dataset.turnId).catch(() => {});
        } else if (name === "title") {
          setTitle(data.title);
        }
      }
    };
    await play(response);
    // The connection dropped mid-answer: the answer goes on on the server; pick it up where it was.
    for (let attempt = 0; !finished && answerEl && !run.stopRequested && attempt < 3; attempt += 1) {
      let again;
      try {
        again = await fetch(`${apiBase}conversations/${conversationId}/stream/`, {
          credentials: "same-origin",
          headers: { Accept: "text/event-stream", "Last-Event-ID": String(lastId) },
          signal: run.controller.signal,
        });
      } catch {
        continue;
      }
      if (again.status === 204) {
        finished = true;
        answerEl = await replaceWithServerTurn(answerEl, answerEl.dataset.turnId).catch(() => answerEl);
        release();
      } else if (again.ok) {
        await play(again);
      }
    }
    if (!finished) throw new Error(strings.network_lost);
  } catch (error) {
    if (error.beforeStream && onRefused) {
      await onRefused();
      showError(error.message);
    } else if (error.beforeStream) {
      // Nothing was stored: put the message back in the composer.
      if (userEl) {
        userEl.remove();
        input.value = draft;
        autosize();
        saveDraft();
      }
      showError(error.message);
    } else if (answerEl && !finished) {
      if (run.stopRequested) {
        await settleStopped(answerEl, text);
      } else {
        markInterrupted(answerEl, text, strings.network_lost);
      }
    } else if (!finished) {
      showError(error.message || strings.load_failed);
    }
  } finally {
    release();
    chat.classList.toggle("has-turns", turnsEl.querySelector(".turn") !== null);
    bumpHistoryItem();
    if (conversationId && titleEl.textContent.trim() === strings.new_chat) refreshTitle();
  }
}

async function settleStopped(answerEl, text) {
  // The stream was cut after a stop: show the stored (cancelled) answer if the server has it already.
  try {
    const rendered = await replaceWithServerTurn(answerEl, answerEl.dataset.turnId);
    if (rendered.dataset.status === "cancelled") return;
    markInterrupted(rendered, text, strings.stopped);
  } catch {
    markInterrupted(answerEl, text, strings.stopped);
  }
}

async function ensureConversation() {
  // True when this call created the chat (so a refused first message can take it back).
  if (conversationId) return false;
  const settings = {};
  const model = modelPicker?.value;
  const systemPrompt = settingsForm.elements.system_prompt.value.trim();
  if (model) settings.model = model;
  if (systemPrompt) settings.system_prompt = systemPrompt;
  if (temporary) settings.temporary = true;
  const created = await request("POST", chat.dataset.startUrl, settings);
  document.querySelector(".temporary-toggle")?.remove();
  const oldKey = draftKey();
  conversationId = created.id;
  chat.dataset.conversationId = created.id;
  try {
    localStorage.removeItem(oldKey);
  } catch {
    // Nothing stored.
  }
  window.history.replaceState(null, "", conversationUrl(created.id));
  // The language switcher returns to this page, not to a new chat.
  for (const next of document.querySelectorAll(".language-form input[name=next]")) next.value = conversationUrl(created.id);
  updateExportLinks();
  if (!temporary) addHistoryItem(created.id);
  return true;
}

async function discardNewConversation() {
  // The first message was refused before anything was stored: no empty "New chat" is left behind.
  const id = conversationId;
  try {
    await api("DELETE", `conversations/${id}/`);
  } catch {
    return; // Still there: the chat stays, empty, as the server has it.
  }
  historyEl.querySelector(`.history-item[data-id="${id}"]`)?.remove();
  conversationId = "";
  chat.dataset.conversationId = "";
  window.history.replaceState(null, "", chat.dataset.homeUrl);
  for (const next of document.querySelectorAll(".language-form input[name=next]")) next.value = chat.dataset.homeUrl;
  document.getElementById("export-links").classList.add("is-hidden");
  showEmptyHistoryNote();
}

async function send(content) {
  if (!content.trim()) return;
  if (run.busy) {
    showError(strings.wait_for_answer);
    return;
  }
  if (!files.ready()) {
    showError(strings.file_wait);
    return;
  }
  hideError();
  let created;
  try {
    created = await ensureConversation();
  } catch (error) {
    showError(error.message);
    return;
  }
  const sent = files.take();
  const userEl = newTurnElement("user", content);
  if (sent.length) userEl.querySelector(".turn-body").after(attachmentList(sent));
  turnsEl.append(userEl);
  chat.classList.add("has-turns");
  input.value = "";
  autosize();
  saveDraft();
  scrollToBottom();
  const onRefused = async () => {
    // Nothing was stored: the message and its files go back to the composer.
    userEl.remove();
    if (created) await discardNewConversation();
    input.value = content;
    autosize();
    saveDraft();
    files.restore(sent);
    updateSendState();
  };
  const body = sent.length ? { content, attachments: sent.map((file) => file.id) } : { content };
  await streamAnswer(`conversations/${conversationId}/turns/`, body, { userEl, draft: content, onRefused });
}

function removeTurnsAfter(article) {
  // What followed this turn stays stored on its own branch; the new version starts a new one.
  while (article.nextElementSibling) article.nextElementSibling.remove();
}

async function regenerate(answerEl) {
  if (run.busy || !conversationId) return;
  const answer = answerEl || [...turnsEl.querySelectorAll(".turn-assistant")].pop();
  if (!answer) return;
  removeTurnsAfter(answer);
  await streamAnswer(`conversations/${conversationId}/regenerate/`, { turn_id: Number(answer.dataset.turnId) }, {
    replaceEl: answer,
    onRefused: reloadThread,
  });
}

async function editMessage(messageEl, content) {
  if (run.busy || !conversationId) return;
  removeTurnsAfter(messageEl);
  const userEl = newTurnElement("user", content);
  messageEl.replaceWith(userEl);
  scrollToBottom();
  await streamAnswer(`conversations/${conversationId}/turns/${messageEl.dataset.turnId}/edit/`, { content }, {
    userEl,
    onRefused: reloadThread,
  });
}

async function reloadThread(focusTurnId = null) {
  // The newest page of the branch shown, as the server renders it (after a switch, or a refused edit).
  const response = await fetch(`${conversationUrl(conversationId)}turns/`, { credentials: "same-origin" });
  if (!response.ok) throw new Error(strings.load_failed);
  const thread = fragment(await response.text());
  enhance(thread);
  turnsEl.replaceChildren(thread);
  chat.classList.toggle("has-turns", turnsEl.querySelector(".turn") !== null);
  const focused = focusTurnId && turnsEl.querySelector(`.turn[data-turn-id="${focusTurnId}"]`);
  if (focused) {
    focused.scrollIntoView({ block: "nearest" });
    focused.querySelector('[data-action="version"]:not([disabled])')?.focus();
  }
}

async function switchVersion(button) {
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

async function stop() {
  if (!run.busy || run.stopRequested) return;
  run.stopRequested = true;
  stopButton.disabled = true;
  const controller = run.controller;
  try {
    await api("POST", `conversations/${conversationId}/stop/`);
  } catch {
    // Aborting below also stops the answer: the server notices the closed stream.
  }
  // The server ends the stream with a `done` (cancelled) event; cut it if that takes too long.
  setTimeout(() => {
    if (run.controller === controller && controller) controller.abort();
  }, 3000);
}

function startEdit(article) {
  if (run.busy) return;
  const raw = article.querySelector("template.turn-raw").content.textContent;
  const editor = document.createElement("form");
  editor.className = "turn-editor";
  const area = document.createElement("textarea");
  area.value = raw;
  area.rows = Math.min(10, raw.split("\n").length + 1);
  const actions = document.createElement("div");
  actions.className = "turn-editor-actions";
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "btn btn-small";
  cancel.textContent = strings.cancel;
  const save = document.createElement("button");
  save.type = "submit";
  save.className = "btn btn-primary btn-small";
  save.textContent = strings.save_and_send;
  actions.append(cancel, save);
  editor.append(area, actions);
  article.classList.add("is-editing");
  article.append(editor);
  area.focus();
  const close = () => {
    editor.remove();
    article.classList.remove("is-editing");
    article.querySelector(".action-edit")?.focus();
  };
  cancel.addEventListener("click", close);
  area.setAttribute("aria-label", strings.edit_message);
  area.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      close();
    } else if (isSendKey(event)) {
      event.preventDefault();
      editor.requestSubmit();
    }
  });
  editor.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!area.value.trim()) return;
    editor.remove();
    article.classList.remove("is-editing");
    editMessage(article, area.value);
  });
}

function feedbackUrl(article) {
  return `${conversationUrl(conversationId)}turns/${article.dataset.turnId}/feedback/`;
}

async function setFeedback(button) {
  // A second click on the pressed rating takes it back.
  const article = button.closest(".turn");
  const clearing = button.getAttribute("aria-pressed") === "true";
  const rating = clearing ? 0 : Number(button.dataset.rating);
  const commentForm = article.querySelector(".feedback-comment");
  try {
    await request("POST", feedbackUrl(article), { rating, comment: commentForm?.elements.comment.value || "" });
  } catch (error) {
    showError(error.message);
    return;
  }
  for (const other of article.querySelectorAll(".feedback-btn")) {
    other.setAttribute("aria-pressed", String(!clearing && other === button));
  }
  if (commentForm) {
    commentForm.classList.toggle("is-hidden", clearing);
    commentForm.dataset.rating = String(rating);
    if (clearing) commentForm.elements.comment.value = "";
  }
}

async function saveFeedbackComment(commentForm) {
  const article = commentForm.closest(".turn");
  const status = commentForm.querySelector(".feedback-status");
  try {
    await request("POST", feedbackUrl(article), {
      rating: Number(commentForm.dataset.rating), comment: commentForm.elements.comment.value,
    });
    status.textContent = strings.feedback_comment_saved;
  } catch (error) {
    status.textContent = error.message;
  }
}

turnsEl.addEventListener("submit", (event) => {
  const commentForm = event.target.closest(".feedback-comment");
  if (!commentForm) return;
  event.preventDefault();
  saveFeedbackComment(commentForm);
});

async function loadEarlierTurns(button) {
  if (button.dataset.loading) return;
  button.dataset.loading = "1";
  try {
    const response = await fetch(`${conversationUrl(conversationId)}turns/?before=${button.dataset.before}`, {
      credentials: "same-origin",
    });
    if (!response.ok) throw new Error();
    const earlier = fragment(await response.text());
    enhance(earlier);
    // Keep the reader's place: the page grows above what they are looking at.
    const fromBottom = scrollEl.scrollHeight - scrollEl.scrollTop;
    button.replaceWith(earlier);
    scrollEl.scrollTop = scrollEl.scrollHeight - fromBottom;
  } catch {
    delete button.dataset.loading;
    showError(strings.load_failed);
  }
}

// --- Title, export, settings ---------------------------------------------------------------------------

function setTitle(title) {
  titleEl.textContent = title || strings.new_chat;
  document.title = `${titleEl.textContent} · ${document.title.split(" · ").pop()}`;
  const link = historyEl.querySelector(`.history-item[data-id="${conversationId}"] .history-link`);
  if (link) link.textContent = titleEl.textContent;
}

async function refreshTitle() {
  try {
    const conversation = await api("GET", `conversations/${conversationId}/`);
    if (conversation.title) setTitle(conversation.title);
  } catch {
    // The title shows on the next page load.
  }
}

function updateExportLinks() {
  document.getElementById("export-md").href = `${apiBase}conversations/${conversationId}/export/?format=md`;
  document.getElementById("export-json").href = `${apiBase}conversations/${conversationId}/export/?format=json`;
  document.getElementById("export-links").classList.remove("is-hidden");
}

settingsForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const status = document.getElementById("settings-status");
  if (conversationId) {
    try {
      await api("PATCH", `conversations/${conversationId}/`, { system_prompt: settingsForm.elements.system_prompt.value });
    } catch (error) {
      status.textContent = error.message;
      return;
    }
  }
  // Without a conversation yet the settings are sent when the first message creates it.
  status.textContent = strings.saved;
});

// --- Model picker: the chat's model, saved as soon as it is chosen ----------------------------------------

// The last saved choice (what the server has), and the save under way: a message waits for it, so the model
// chosen just before sending is the one that answers.
let savedModel = modelPicker?.value ?? "";
let modelSaving = Promise.resolve();

modelPicker?.addEventListener("change", () => {
  const chosen = modelPicker.value;
  if (!conversationId) {
    savedModel = chosen; // a new chat is created with it
    return;
  }
  modelSaving = api("PATCH", `conversations/${conversationId}/`, { model: chosen }).then(
    () => {
      savedModel = chosen;
    },
    (error) => {
      // Not saved: the picker goes back to the model the chat still has, so the two never disagree.
      if (modelPicker.value === chosen) modelPicker.value = savedModel;
      showError(error.message);
    },
  );
});

// --- History sidebar -------------------------------------------------------------------------------------

function historyUrl(extra = {}) {
  const params = new URLSearchParams();
  if (searchInput.value.trim()) params.set("q", searchInput.value.trim());
  if (showArchived) params.set("archived", "1");
  if (currentFolder) params.set("folder", currentFolder);
  for (const [key, value] of Object.entries(extra)) params.set(key, value);
  return `${historyEl.dataset.url}?${params}`;
}

function markActive() {
  for (const item of historyEl.querySelectorAll(".history-item")) {
    item.classList.toggle("is-active", item.dataset.id === conversationId);
  }
}

function historyListShown() {
  // The plain list (not a search, a folder or the archive): where a new or answered chat goes to the top.
  return !showArchived && !currentFolder && !searchInput.value.trim() && !temporary && !chat.dataset.temporary;
}

function todayHeading() {
  const existing = historyEl.querySelector('.history-group[data-group="today"]');
  if (existing) return existing;
  const heading = document.createElement("h2");
  heading.className = "history-group";
  heading.dataset.group = "today";
  heading.textContent = strings.today;
  // Below the pinned chats, if any.
  const pinned = [...historyEl.querySelectorAll('.history-item[data-pinned="1"]')].pop();
  if (pinned) pinned.after(heading);
  else historyEl.prepend(heading);
  return heading;
}

function addHistoryItem(id) {
  // A new chat is listed at once, as "New chat"; its title follows when the server has one.
  if (!historyListShown() || historyEl.querySelector(`.history-item[data-id="${id}"]`)) return;
  const item = document.getElementById("history-item-template").content.firstElementChild.cloneNode(true);
  item.dataset.id = id;
  const link = item.querySelector(".history-link");
  link.href = conversationUrl(id);
  link.textContent = titleEl.textContent.trim() || strings.new_chat;
  historyEl.querySelector(".history-empty")?.remove();
  todayHeading().after(item);
  markActive();
}

function bumpHistoryItem() {
  // The chat just answered is the most recent one: move it to the top without reloading the list (which would
  // lose how far it was scrolled and loaded).
  if (!conversationId || !historyListShown()) return;
  const item = historyEl.querySelector(`.history-item[data-id="${conversationId}"]`);
  if (!item) {
    addHistoryItem(conversationId);
    return;
  }
  if (item.dataset.pinned === "1") return; // pinned chats keep their own order
  const heading = todayHeading();
  if (heading.nextElementSibling !== item) heading.after(item);
  for (const group of historyEl.querySelectorAll(".history-group")) {
    if (!group.nextElementSibling?.classList.contains("history-item")) group.remove();
  }
}

function showEmptyHistoryNote() {
  if (historyEl.querySelector(".history-item, .history-empty, .history-more")) return;
  historyEl.replaceChildren();
  refreshHistory();
}

let historyRequest = 0;

async function refreshHistory() {
  const request = ++historyRequest;
  try {
    const response = await fetch(historyUrl(), { credentials: "same-origin" });
    if (!response.ok || request !== historyRequest) return;
    historyEl.replaceChildren(fragment(await response.text()));
    markActive();
    observeMore();
  } catch {
    // Offline: the list stays as it was.
  }
}

async function loadMore(button) {
  if (button.dataset.loading) return;
  button.dataset.loading = "1";
  try {
    const response = await fetch(historyUrl({ cursor: button.dataset.cursor }), { credentials: "same-origin" });
    if (!response.ok) throw new Error();
    const more = fragment(await response.text());
    // A page can start in the middle of the last group: don't repeat its heading.
    const headings = historyEl.querySelectorAll(".history-group");
    const lastGroup = headings[headings.length - 1]?.dataset.group;
    const firstHeading = more.querySelector(".history-group");
    if (firstHeading && firstHeading.dataset.group === lastGroup && more.firstElementChild === firstHeading) {
      firstHeading.remove();
    }
    button.replaceWith(more);
    if (sidebarScrollWanted !== null) {
      historyEl.scrollTop = sidebarScrollWanted;
      sidebarScrollWanted = null;
    }
    markActive();
    observeMore();
  } catch {
    delete button.dataset.loading;
  }
}

const moreObserver = new IntersectionObserver(
  (entries) => {
    for (const entry of entries) if (entry.isIntersecting) loadMore(entry.target);
  },
  { root: historyEl, rootMargin: "200px" },
);

function observeMore() {
  const button = historyEl.querySelector(".history-more");
  if (button) moreObserver.observe(button);
}

let searchTimer = null;
searchInput.addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(refreshHistory, 250);
});
searchInput.form.addEventListener("submit", (event) => {
  event.preventDefault();
  refreshHistory();
});

for (const tab of document.querySelectorAll(".history-tab")) {
  tab.addEventListener("click", () => {
    showArchived = tab.dataset.archived === "1";
    for (const other of document.querySelectorAll(".history-tab")) {
      other.setAttribute("aria-selected", String(other === tab));
    }
    refreshHistory();
  });
}

function ask({ message, value = null, okLabel, danger = false }) {
  document.getElementById("dialog-message").textContent = message;
  const field = document.getElementById("dialog-input");
  const ok = document.getElementById("dialog-ok");
  field.classList.toggle("is-hidden", value === null);
  field.value = value ?? "";
  ok.textContent = okLabel;
  ok.classList.toggle("btn-danger", danger);
  ok.classList.toggle("btn-primary", !danger);
  dialog.returnValue = "";
  dialog.showModal();
  if (value !== null) field.select();
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => resolve(dialog.returnValue === "ok" ? field.value : null),
      { once: true },
    );
  });
}

// Enter in the rename field saves (the form's default button would be Cancel, the first one).
document.getElementById("dialog-input").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.isComposing) {
    event.preventDefault();
    dialog.close("ok");
  }
});

async function historyAction(button) {
  const item = button.closest(".history-item");
  button.closest("details")?.removeAttribute("open");
  const id = item.dataset.id;
  const link = item.querySelector(".history-link");
  try {
    if (button.dataset.action === "rename") {
      const title = await ask({ message: strings.rename_prompt, value: link.textContent.trim(), okLabel: strings.save });
      if (title === null || !title.trim()) return;
      const updated = await api("PATCH", `conversations/${id}/`, { title: title.trim() });
      link.textContent = updated.title;
      link.title = updated.title;
      if (id === conversationId) setTitle(updated.title);
    } else if (button.dataset.action === "pin") {
      await request("POST", `${conversationUrl(id)}organize/`, { pinned: item.dataset.pinned !== "1" });
      await refreshHistory();
    } else if (button.dataset.action === "move") {
      const folder = await chooseFolder(item.dataset.folder);
      if (folder === null) return;
      await request("POST", `${conversationUrl(id)}organize/`, { folder: folder ? Number(folder) : null });
      await refreshHistory();
    } else if (button.dataset.action === "archive") {
      await api("PATCH", `conversations/${id}/`, { archived: item.dataset.archived !== "1" });
      item.remove();
    } else if (button.dataset.action === "delete") {
      const confirmed = await ask({ message: strings.delete_confirm, okLabel: strings.delete, danger: true });
      if (confirmed === null) return;
      await api("DELETE", `conversations/${id}/`);
      item.remove();
      if (id === conversationId) {
        try {
          localStorage.removeItem(draftKey());
        } catch {
          // Nothing stored.
        }
        window.location.assign(chat.dataset.homeUrl);
      }
    }
  } catch (error) {
    showError(error.message);
  }
}

// --- Share links ---------------------------------------------------------------------------------------------------

const shareDialog = document.getElementById("share-dialog");
const shareForm = document.getElementById("share-form");

function openShareDialog() {
  if (!conversationId) return;
  document.getElementById("share-result").classList.add("is-hidden");
  document.getElementById("share-create").disabled = false;
  shareDialog.showModal();
}

shareForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const create = document.getElementById("share-create");
  create.disabled = true;
  const days = shareForm.elements.expires_in_days.value;
  try {
    const link = await request("POST", `${conversationUrl(conversationId)}share/`, {
      display_name: shareForm.elements.display_name.value,
      expires_in_days: days ? Number(days) : null,
    });
    const field = document.getElementById("share-url");
    field.value = link.url;
    document.getElementById("share-result").classList.remove("is-hidden");
    field.select();
  } catch (error) {
    create.disabled = false;
    showError(error.message);
    shareDialog.close();
  }
});

// --- Folders ---------------------------------------------------------------------------------------------------

const folderList = document.getElementById("folder-list");
const folderDialog = document.getElementById("folder-dialog");

function folderRows() {
  return [...folderList.querySelectorAll(".folder-row")];
}

function openFolder(button) {
  // A folder's button filters the list to its chats; pressed again, back to all chats.
  const row = button.closest(".folder-row");
  const opening = button.getAttribute("aria-pressed") !== "true";
  for (const other of folderList.querySelectorAll(".folder-btn")) other.setAttribute("aria-pressed", "false");
  button.setAttribute("aria-pressed", String(opening));
  currentFolder = opening ? row.dataset.folderId : "";
  refreshHistory();
}

function addFolderRow(folder) {
  const row = document.createElement("li");
  row.className = "folder-row";
  row.dataset.folderId = String(folder.id);
  const button = document.createElement("button");
  button.type = "button";
  button.className = "folder-btn";
  button.dataset.action = "open-folder";
  button.setAttribute("aria-pressed", "false");
  const name = document.createElement("span");
  name.className = "folder-name";
  name.textContent = folder.name;
  button.append(name);
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "icon-btn folder-delete";
  remove.dataset.action = "delete-folder";
  remove.tabIndex = -1;
  remove.setAttribute("aria-label", strings.delete_folder);
  remove.textContent = "×";
  row.append(button, remove);
  folderList.append(row);
}

async function newFolder() {
  const name = await ask({ message: strings.folder_name_prompt, value: "", okLabel: strings.create });
  if (name === null || !name.trim()) return null;
  try {
    const folder = await request("POST", folderList.closest(".folders").dataset.createUrl, { name: name.trim() });
    addFolderRow(folder);
    return folder;
  } catch (error) {
    showError(error.message);
    return null;
  }
}

async function deleteFolder(row) {
  const confirmed = await ask({ message: strings.delete_folder_confirm, okLabel: strings.delete, danger: true });
  if (confirmed === null) return;
  try {
    await request("POST", `${folderList.closest(".folders").dataset.createUrl}${row.dataset.folderId}/delete/`);
  } catch (error) {
    showError(error.message);
    return;
  }
  if (currentFolder === row.dataset.folderId) currentFolder = "";
  row.remove();
  refreshHistory();
}

function chooseFolder(current) {
  // The folder a chat goes in: "" for none, a folder's id, or null when cancelled. A new name makes a folder.
  const select = document.getElementById("folder-select");
  const none = new Option(strings.no_folder, "");
  select.replaceChildren(none, ...folderRows().map((row) => new Option(row.querySelector(".folder-name").textContent, row.dataset.folderId)));
  select.value = current || "";
  const fresh = document.getElementById("folder-new");
  fresh.value = "";
  folderDialog.returnValue = "";
  folderDialog.showModal();
  return new Promise((resolve) => {
    folderDialog.addEventListener(
      "close",
      async () => {
        if (folderDialog.returnValue !== "ok") return resolve(null);
        if (!fresh.value.trim()) return resolve(select.value);
        try {
          const folder = await request("POST", folderList.closest(".folders").dataset.createUrl, { name: fresh.value.trim() });
          addFolderRow(folder);
          resolve(String(folder.id));
        } catch (error) {
          showError(error.message);
          resolve(null);
        }
      },
      { once: true },
    );
  });
}

// --- Timestamps: relative, the exact time on hover ---------------------------------------------------------------

const relativeTime = new Intl.RelativeTimeFormat(document.documentElement.lang || undefined, { numeric: "auto" });
const TIME_STEPS = [["second", 60], ["minute", 60], ["hour", 24], ["day", 7], ["week", 4.35], ["month", 12], ["year", Infinity]];

function relative(date) {
  let amount = (date.getTime() - Date.now()) / 1000;
  for (const [unit, size] of TIME_STEPS) {
    if (Math.abs(amount) < size) return relativeTime.format(Math.round(amount), unit);
    amount /= size;
  }
  return "";
}

function updateTimes(root = document) {
  for (const time of root.querySelectorAll("time.turn-time")) {
    const date = new Date(time.dateTime);
    const text = Number.isNaN(date.getTime()) ? "" : relative(date);
    // Only when it changed: the observer below sees this write too.
    if (text && time.textContent !== text) time.textContent = text;
  }
}
setInterval(() => updateTimes(), 60_000);
new MutationObserver(() => updateTimes(turnsEl)).observe(turnsEl, { childList: true, subtree: true });

// --- Keyboard shortcuts (listed in the help dialog) ---------------------------------------------------------------

document.addEventListener("keydown", (event) => {
  const ctrl = event.ctrlKey || event.metaKey;
  const key = event.key.toLowerCase();
  if (ctrl && event.shiftKey && key === "o") {
    event.preventDefault();
    window.location.assign(chat.dataset.homeUrl);
  } else if (ctrl && !event.shiftKey && key === "k") {
    event.preventDefault();
    if (narrowScreen.matches) setSidebarOpen(true);
    searchInput.focus();
  } else if (event.shiftKey && event.key === "Escape") {
    event.preventDefault();
    input.focus();
  } else if (ctrl && event.shiftKey && key === "x") {
    event.preventDefault();
    stop();
  } else if (ctrl && event.shiftKey && (event.key === ";" || event.key === ":" || event.code === "Semicolon")) {
    event.preventDefault();
    const last = [...turnsEl.querySelectorAll(".turn-assistant")].pop();
    if (last) copyText(last.querySelector("template.turn-raw").content.textContent);
  } else if (ctrl && (event.key === "/" || event.code === "Slash")) {
    event.preventDefault();
    document.getElementById("shortcuts-dialog").showModal();
  }
});

// --- Menus, sidebar, settings: keyboard and closing ------------------------------------------------------------

function openMenus() {
  return document.querySelectorAll("details.item-menu[open]");
}

function closeMenus(except = null) {
  for (const menu of openMenus()) if (menu !== except) menu.removeAttribute("open");
}

function menuItems(menu) {
  return [...menu.querySelectorAll('[role="menuitem"]')];
}

// One menu open at a time, so an open menu never covers the next rows' "…" buttons.
document.addEventListener(
  "toggle",
  (event) => {
    const menu = event.target;
    if (!(menu instanceof HTMLDetailsElement) || !menu.classList.contains("item-menu") || !menu.open) return;
    closeMenus(menu);
    // Opened from the keyboard (or clicked): the first item takes the focus, as in any menu.
    if (menu.contains(document.activeElement)) menuItems(menu)[0]?.focus();
  },
  true,
);

// Choosing an item closes its menu (a download link leaves the page where it was).
document.addEventListener("click", (event) => {
  const item = event.target.closest('details.item-menu [role="menuitem"]');
  if (item) item.closest("details").removeAttribute("open");
});

document.addEventListener("pointerdown", (event) => {
  for (const menu of openMenus()) if (!menu.contains(event.target)) menu.removeAttribute("open");
});

document.addEventListener("keydown", (event) => {
  const menu = event.target.closest?.("details.item-menu[open]");
  if (menu) {
    const items = menuItems(menu);
    const index = items.indexOf(document.activeElement);
    const move = { ArrowDown: index + 1, ArrowUp: index - 1, Home: 0, End: items.length - 1 }[event.key];
    if (move !== undefined) {
      event.preventDefault();
      items[(move + items.length) % items.length]?.focus();
      return;
    }
    if (event.key === "Escape" || event.key === "Tab") {
      if (event.key === "Escape") event.preventDefault();
      menu.removeAttribute("open");
      const row = menu.closest(".history-item");
      (row ? row.querySelector(".history-link") : menu.querySelector("summary")).focus();
      event.stopPropagation();
      return;
    }
    if (event.key.length === 1 && !event.ctrlKey && !event.metaKey) {
      // Typing closes the menu: menus hold no text input.
      menu.removeAttribute("open");
    }
    return;
  }
  if (openMenus().length && (event.key === "Escape" || (event.key.length === 1 && !event.ctrlKey && !event.metaKey))) {
    closeMenus();
    if (event.key === "Escape") event.preventDefault();
    return;
  }
  if (event.key !== "Escape" || event.defaultPrevented || dialog.open) return;
  if (document.body.classList.contains("sidebar-open")) {
    setSidebarOpen(false);
  } else if (!settingsForm.classList.contains("is-hidden")) {
    setSettingsOpen(false);
  }
});

// The history list: one Tab stop per row (its link). Arrow keys move between rows; ArrowRight, Shift+F10 or the
// context-menu key open the row's menu.
historyEl.addEventListener("keydown", (event) => {
  const link = event.target.closest(".history-link");
  if (!link) return;
  const links = [...historyEl.querySelectorAll(".history-link")];
  const index = links.indexOf(link);
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    links[Math.max(0, Math.min(links.length - 1, index + (event.key === "ArrowDown" ? 1 : -1)))].focus();
  } else if (event.key === "ArrowRight" || event.key === "ContextMenu" || (event.key === "F10" && event.shiftKey)) {
    event.preventDefault();
    const menu = link.closest(".history-item").querySelector("details.item-menu");
    menu.open = true;
    menuItems(menu)[0]?.focus();
  }
});

function setSidebarOpen(open) {
  document.body.classList.toggle("sidebar-open", open);
  document.querySelector(".sidebar-toggle").setAttribute("aria-expanded", String(open));
  updateSidebarInert();
  if (open) sidebar.querySelector(".sidebar-close").focus();
  else if (narrowScreen.matches) document.querySelector(".sidebar-toggle").focus();
}

function updateSidebarInert() {
  // At phone width a closed sidebar is off-screen: out of the Tab order and of the accessibility tree too.
  sidebar.inert = narrowScreen.matches && !document.body.classList.contains("sidebar-open");
}
narrowScreen.addEventListener("change", updateSidebarInert);

function setSettingsOpen(open) {
  settingsForm.classList.toggle("is-hidden", !open);
  for (const toggle of document.querySelectorAll('[data-action="toggle-settings"]')) {
    toggle.setAttribute("aria-expanded", String(open));
  }
  if (open) settingsForm.elements.system_prompt.focus();
  else document.querySelector('.chat-tools [data-action="toggle-settings"]').focus();
}

// Opening a chat from the sidebar reloads the page: keep the sidebar where it was scrolled.
const SIDEBAR_SCROLL_KEY = "chatsite:sidebar-scroll";
let sidebarScrollWanted = null;
historyEl.addEventListener("click", (event) => {
  if (!event.target.closest(".history-link")) return;
  try {
    sessionStorage.setItem(SIDEBAR_SCROLL_KEY, String(historyEl.scrollTop));
  } catch {
    // No storage: the open chat is scrolled into view instead.
  }
});

function restoreSidebarScroll() {
  let saved = null;
  try {
    saved = sessionStorage.getItem(SIDEBAR_SCROLL_KEY);
    sessionStorage.removeItem(SIDEBAR_SCROLL_KEY);
  } catch {
    // No storage.
  }
  if (saved !== null) {
    historyEl.scrollTop = Number(saved);
    // The page lists chats down to the open one; rows below it load next, then the scroll can reach its place.
    if (historyEl.scrollTop < Number(saved) - 1) sidebarScrollWanted = Number(saved);
  }
  const active = historyEl.querySelector(".history-item.is-active");
  if (!active) return;
  const list = historyEl.getBoundingClientRect();
  const row = active.getBoundingClientRect();
  if (row.bottom < list.top + 4 || row.top > list.bottom - 4) active.scrollIntoView({ block: "center" });
}

// --- One click handler for the whole page ------------------------------------------------------------------

document.addEventListener("click", async (event) => {
  const target = event.target.closest("[data-action]");
  if (!target) return;
  const action = target.dataset.action;
  const article = target.closest(".turn");
  if (action === "copy-turn") {
    const raw = article.querySelector("template.turn-raw").content.textContent;
    if (await copyText(raw)) flashLabel(target, strings.copied);
  } else if (action === "copy-code") {
    const code = target.closest(".code-block").querySelector("pre").innerText;
    if (await copyText(code)) flashLabel(target, strings.copied);
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
    if (await copyText(document.getElementById("share-url").value)) flashLabel(target, strings.copied);
  } else if (action === "suggest") {
    input.value = target.textContent.trim();
    autosize();
    updateSendState();
    input.focus();
  } else if (action === "open-folder") {
    openFolder(target);
  } else if (action === "new-folder") {
    newFolder();
  } else if (action === "delete-folder") {
    deleteFolder(target.closest(".folder-row"));
  } else if (action === "toggle-temporary") {
    temporary = target.getAttribute("aria-pressed") !== "true";
    target.setAttribute("aria-pressed", String(temporary));
    document.getElementById("temporary-note").classList.toggle("is-hidden", !temporary);
    chat.classList.toggle("is-temporary", temporary);
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

// History "Load more" buttons carry the cursor but no data-action: handle them here too.
historyEl.addEventListener("click", (event) => {
  const more = event.target.closest(".history-more");
  if (more) loadMore(more);
});

function followRunningAnswer() {
  // Reloaded, reopened or opened in a second tab while an answer is written: show it live.
  const running = turnsEl.querySelector(".turn-assistant[data-status=pending], .turn-assistant[data-status=streaming]");
  if (running && conversationId) streamAnswer(`conversations/${conversationId}/stream/`, null, { replaceEl: running });
}

enhance(document);
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
