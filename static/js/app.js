// Behaviour shared by every page: theme toggle, copy buttons, confirmations. The chat page adds chat.js.

import { copyText, flashLabel, strings } from "./util.js";

const THEME_KEY = "chatsite:theme";

function toggleTheme() {
  const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
  document.documentElement.dataset.theme = next;
  try {
    localStorage.setItem(THEME_KEY, next);
  } catch {
    // Private mode without storage: the choice lasts for this page only.
  }
}

document.addEventListener("click", async (event) => {
  const target = event.target.closest("[data-action]");
  if (!target) return;
  const action = target.dataset.action;
  if (action === "toggle-theme") {
    toggleTheme();
  } else if (action === "copy-text") {
    const source = document.getElementById(target.dataset.copyTarget);
    if (source && (await copyText(source.textContent))) flashLabel(target, strings.copied);
  }
});

// Destructive form buttons ask first (data-confirm holds the translated question).
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  if (button?.dataset.confirm && !window.confirm(button.dataset.confirm)) event.preventDefault();
});
