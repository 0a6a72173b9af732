// The keyboard: the page's shortcuts (listed in its help dialog, conversations/views.py SHORTCUTS), arrow keys and
// Esc in menus, and Esc closing the sidebar or Settings.

import { chat } from "./page.js";
import { input } from "./composer.js";
import { dialog } from "./dialogs.js";
import { searchInput } from "./history.js";
import { closeMenus, menuItems, openMenus } from "./menus.js";
import { setSettingsOpen, settingsForm } from "./settings.js";
import { narrowScreen, setSidebarOpen } from "./sidebar.js";
import { stop } from "./streaming.js";
import { turnsEl } from "./turns.js";
import { copyText } from "../util.js";

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
