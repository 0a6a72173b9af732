// Model continuity on an answer: "Regenerate with another model" (a dialog of the offered models; the new version
// is labelled with its model) and "Continue" on an answer that was stopped or cut at its length (the same answer
// grows: its text so far stays, the new text streams after it). Its own click handler, for its own actions.

import { conversationId, run } from "./page.js";
import { regenerate } from "./sending.js";
import { streamAnswer } from "./streaming.js";
import { reloadThread } from "./thread.js";

const dialog = document.getElementById("regenerate-dialog");
let answerToRegenerate = null;

async function continueAnswer(answerEl) {
  if (run.busy || !conversationId) return;
  const textSoFar = answerEl.querySelector("template.turn-raw").content.textContent;
  await streamAnswer(`conversations/${conversationId}/continue/`, { turn_id: Number(answerEl.dataset.turnId) }, {
    replaceEl: answerEl,
    initialText: textSoFar,
    onRefused: reloadThread,
  });
}

document.addEventListener("click", (event) => {
  const target = event.target.closest("[data-action]");
  if (!target) return;
  if (target.dataset.action === "regenerate-with") {
    answerToRegenerate = target.closest(".turn");
    dialog.showModal();
  } else if (target.dataset.action === "continue-answer") {
    continueAnswer(target.closest(".turn"));
  }
});

dialog.addEventListener("close", () => {
  const answer = answerToRegenerate;
  answerToRegenerate = null;
  if (answer && dialog.returnValue) regenerate(answer, dialog.returnValue);
  else answer?.querySelector(".action-regenerate-with")?.focus();
});
