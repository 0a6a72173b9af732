// The shared (read-only) page: its answers get the chat page's math and code-block toolbars.

import { ANSWER_BODY_ACTIONS, answerBodyAction, enhanceAnswers } from "./answer-body.js";

document.addEventListener("click", (event) => {
  const target = event.target.closest("[data-action]");
  if (target && ANSWER_BODY_ACTIONS.has(target.dataset.action)) answerBodyAction(target);
});

enhanceAnswers(document);
