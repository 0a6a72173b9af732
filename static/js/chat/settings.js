// The chat's settings: the model picker in the header and the Settings panel (the system prompt, web search). A new chat is
// created with them; an existing chat saves them through PATCH /api/v1/conversations/<id>/.

import { conversationId } from "./page.js";
import { api } from "./api.js";
import { showError } from "./composer.js";
import { strings } from "../util.js";

export const settingsForm = document.getElementById("chat-settings");
export const modelPicker = document.getElementById("model-picker"); // absent when only one model is offered

export function setSettingsOpen(open) {
  settingsForm.classList.toggle("is-hidden", !open);
  for (const toggle of document.querySelectorAll('[data-action="toggle-settings"]')) {
    toggle.setAttribute("aria-expanded", String(open));
  }
  if (open) settingsForm.elements.system_prompt.focus();
  else document.querySelector('.chat-tools [data-action="toggle-settings"]').focus();
}

settingsForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const status = document.getElementById("settings-status");
  if (conversationId) {
    try {
      const changes = { system_prompt: settingsForm.elements.system_prompt.value };
      if (settingsForm.elements.personal) changes.personal = settingsForm.elements.personal.checked;
      await api("PATCH", `conversations/${conversationId}/`, changes);
    } catch (error) {
      status.textContent = error.message;
      return;
    }
  }
  // Without a conversation yet the settings are sent when the first message creates it.
  status.textContent = strings.saved;
});

// The web search switch (present when the site has a search service) is saved as soon as it changes.
const webSearch = settingsForm.elements.web_search;
webSearch?.addEventListener("change", async () => {
  if (!conversationId) return; // a new chat is created with it
  const status = document.getElementById("settings-status");
  const wanted = webSearch.checked;
  try {
    await api("PATCH", `conversations/${conversationId}/`, { web_search: wanted });
    status.textContent = strings.saved;
  } catch (error) {
    if (webSearch.checked === wanted) webSearch.checked = !wanted; // the chat keeps what the server has
    status.textContent = error.message;
  }
});

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

/** Resolves once the model last chosen is saved (at once when nothing is being saved). */
export function modelSaved() {
  return modelSaving;
}
