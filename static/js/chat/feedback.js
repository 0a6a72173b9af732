// Feedback on an answer: thumbs up or down (a second click takes it back) and an optional comment.

import { conversationId, conversationUrl } from "./page.js";
import { request } from "./api.js";
import { showError } from "./composer.js";
import { turnsEl } from "./turns.js";
import { strings } from "../util.js";

function feedbackUrl(article) {
  return `${conversationUrl(conversationId)}turns/${article.dataset.turnId}/feedback/`;
}

export async function setFeedback(button) {
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
