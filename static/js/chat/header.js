// The chat header: the title (also in the sidebar row) and the export links.

import { apiBase, conversationId } from "./page.js";
import { api } from "./api.js";
import { setHistoryTitle } from "./history.js";
import { strings } from "../util.js";

export const titleEl = document.getElementById("chat-title");

export function setTitle(title) {
  titleEl.textContent = title || strings.new_chat;
  document.title = `${titleEl.textContent} · ${document.title.split(" · ").pop()}`;
  setHistoryTitle(conversationId, title);
}

export async function refreshTitle() {
  try {
    const conversation = await api("GET", `conversations/${conversationId}/`);
    if (conversation.title) setTitle(conversation.title);
  } catch {
    // The title shows on the next page load.
  }
}

export function updateExportLinks() {
  document.getElementById("export-md").href = `${apiBase}conversations/${conversationId}/export/?format=md`;
  document.getElementById("export-json").href = `${apiBase}conversations/${conversationId}/export/?format=json`;
  document.getElementById("export-links").classList.remove("is-hidden");
}
