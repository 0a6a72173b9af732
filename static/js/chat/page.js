// What the chat page's modules share: the chat element and its data, the open conversation (if any), whether a new
// chat is to be temporary, and the answer being written. Other modules read these live and change them only here.

export const chat = document.getElementById("chat");
export const apiBase = chat.dataset.apiBase;
export const userId = chat.dataset.userId;
export let conversationId = chat.dataset.conversationId || "";
export let temporary = false;

/** The open conversation: set when the first message creates it, "" again if that message was refused. */
export function setConversationId(id) {
  conversationId = id;
  chat.dataset.conversationId = id;
}

export function setTemporary(value) {
  temporary = value;
}

// Chats this window deletes itself (its own deletion is no news to it when the event comes back).
export const deletedHere = new Set();

// The answer being streamed; `current` tells a finished stream's cleanup from a newer one's.
export const run = { busy: false, controller: null, stopRequested: false, current: null };

export function conversationUrl(id) {
  return `/c/${id}/`;
}
