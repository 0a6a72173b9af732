// Server tool steps while an answer is written: each step the server ran (the model's call, then the tool's
// result) appears folded above the answer, rendered by the server exactly as after a reload.

import { api } from "./api.js";
import { showError } from "./composer.js";
import { replaceWithServerTurn } from "./turns.js";
import { strings } from "../util.js";

function placeholder(answerEl, turnId) {
  const article = document.createElement("article");
  article.className = "turn turn-placeholder";
  article.dataset.turnId = turnId;
  answerEl.before(article);
  return article;
}

/** A `tool_result` event: show its step (once per step) and its result before the answer being written. */
export function showToolStep(answerEl, data, shownSteps) {
  const pending = [];
  if (!shownSteps.has(data.assistant_turn_id)) {
    shownSteps.add(data.assistant_turn_id);
    pending.push([placeholder(answerEl, data.assistant_turn_id), data.assistant_turn_id]);
  }
  pending.push([placeholder(answerEl, data.tool_turn_id), data.tool_turn_id]);
  // Placeholders keep the order; each is replaced by the stored turn as it arrives.
  return Promise.all(pending.map(([article, id]) => replaceWithServerTurn(article, id).catch(() => article.remove())));
}

/** "Undo" on a "Memory saved" step: forget that memory (DELETE /api/v1/memories/<id>/). */
export async function undoMemory(button) {
  const note = button.closest(".memory-saved");
  button.disabled = true;
  try {
    await api("DELETE", `memories/${button.dataset.memoryId}/`);
  } catch (error) {
    button.disabled = false;
    showError(error.message);
    return;
  }
  note.textContent = strings.memory_removed;
}
