// Sending: a message (the chat is created first when it is new, and taken back if that first message is refused),
// an edited message, and an answer written again.

import { chat, conversationId, conversationUrl, deletedHere, run, setConversationId, temporary } from "./page.js";
import { api, request } from "./api.js";
import {
  autosize, draftKey, files, form, hideError, input, isSendKey, saveDraft, showError, tooLong,
  updateCount, updateSendState,
} from "./composer.js";
import { updateExportLinks } from "./header.js";
import { addHistoryItem, currentFolder, historyEl, showEmptyHistoryNote } from "./history.js";
import { modelPicker, settingsForm } from "./settings.js";
import { streamAnswer } from "./streaming.js";
import { reloadThread } from "./thread.js";
import { newTurnElement, scrollToBottom, turnsEl } from "./turns.js";
import { attachmentList } from "../attachments.js";
import { strings } from "../util.js";

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (tooLong()) {
    updateCount();
    input.focus();
    return;
  }
  send(input.value);
});

async function ensureConversation() {
  // True when this call created the chat (so a refused first message can take it back).
  if (conversationId) return false;
  const settings = {};
  const model = modelPicker?.value;
  const systemPrompt = settingsForm.elements.system_prompt.value.trim();
  if (model) settings.model = model;
  if (systemPrompt) settings.system_prompt = systemPrompt;
  if (settingsForm.elements.web_search?.checked) settings.web_search = true;
  const mcpTools = [...settingsForm.querySelectorAll('input[name="mcp_tool"]:checked')].map((box) => box.value);
  if (mcpTools.length) settings.mcp_tools = mcpTools;
  if (temporary) settings.temporary = true;
  const bases = [...settingsForm.querySelectorAll("input[name=knowledge_base]:checked")].map((box) => Number(box.value));
  if (bases.length) settings.knowledge_bases = bases;
  if (settingsForm.elements.personal && !settingsForm.elements.personal.checked) settings.personal = false;
  if (chat.dataset.assistant) settings.assistant = chat.dataset.assistant; // a chat with an assistant (its link, @name)
  if (currentFolder && !temporary) settings.project = Number(currentFolder); // a new chat in the project shown
  const created = await request("POST", chat.dataset.startUrl, settings);
  if (settings.project) chat.dataset.project = currentFolder;
  document.querySelector(".temporary-toggle")?.remove();
  if (created.delete_after) {
    chat.dataset.deleteAfter = created.delete_after;
    chat.dispatchEvent(new CustomEvent("chat:expires")); // live.js says so when its time is up
  }
  const oldKey = draftKey();
  setConversationId(created.id);
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
  deletedHere.add(id);
  try {
    await api("DELETE", `conversations/${id}/`);
  } catch {
    return; // Still there: the chat stays, empty, as the server has it.
  }
  historyEl.querySelector(`.history-item[data-id="${id}"]`)?.remove();
  setConversationId("");
  window.history.replaceState(null, "", chat.dataset.homeUrl);
  for (const next of document.querySelectorAll(".language-form input[name=next]")) next.value = chat.dataset.homeUrl;
  document.getElementById("export-links").classList.add("is-hidden");
  showEmptyHistoryNote();
}

async function send(typed) {
  if (!typed.trim() && !files.count()) return;
  if (run.busy) {
    showError(strings.wait_for_answer, { until: "answer-ends" });
    return;
  }
  if (!files.ready()) {
    showError(strings.file_wait);
    return;
  }
  hideError();
  // A message of files only is sent as their names: the API needs a message, and the names say what was sent.
  const content = typed.trim() ? typed : "";
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
    input.value = typed;
    autosize();
    saveDraft();
    files.restore(sent);
    updateSendState();
  };
  const body = sent.length ? { content, attachments: sent.map((file) => file.id) } : { content };
  await streamAnswer(`conversations/${conversationId}/turns/`, body, { userEl, draft: typed, onRefused });
}

function removeTurnsAfter(article) {
  // What followed this turn stays stored on its own branch; the new version starts a new one.
  while (article.nextElementSibling) article.nextElementSibling.remove();
}

export async function regenerate(answerEl, model = "") {
  // `model`: write the new version with that model (the chat keeps its own).
  if (run.busy || !conversationId) return;
  const answer = answerEl || [...turnsEl.querySelectorAll(".turn-assistant")].pop();
  if (!answer) return;
  removeTurnsAfter(answer);
  const body = { turn_id: Number(answer.dataset.turnId), ...(model ? { model } : {}) };
  await streamAnswer(`conversations/${conversationId}/regenerate/`, body, {
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

export function startEdit(article) {
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
