// A menu that opens in the composer while the message box holds a trigger ("/" for prompts, "@" for assistants):
// a listbox of matching items under the box's ARIA (aria-controls, aria-activedescendant) with a status line read
// out; arrows choose, Enter or Tab picks, Escape closes, and the message box keeps the focus throughout.

import { form, input } from "./composer.js";
import { format } from "../util.js";

const MAX_SHOWN = 8;

// menuId: the listbox's id (its status line is `${menuId}-status`); optionId: the prefix of its options' ids;
// pattern: matches the whole message box, group 1 being the query; load(): the items, fetched once;
// matches(item, query): whether an item is shown for the lowercased query; label(item, option): fills an option;
// choose(item): what picking one does (the menu is closed first); found: the status line's text, with {count}.
export function composerMenu({ menuId, optionId, pattern, load, matches, label, choose, found }) {
  const menu = document.getElementById(menuId);
  const status = document.getElementById(`${menuId}-status`);
  let items = null; // loaded on the first trigger
  let shown = [];
  let active = 0;

  async function loadItems() {
    if (items === null) {
      try {
        items = await load();
      } catch {
        items = [];
      }
    }
    return items;
  }

  function isOpen() {
    return !menu.classList.contains("is-hidden");
  }

  function close() {
    menu.classList.add("is-hidden");
    menu.replaceChildren();
    input.removeAttribute("aria-activedescendant");
    input.removeAttribute("aria-controls");
    shown = [];
  }

  function highlight(index) {
    active = (index + shown.length) % shown.length;
    menu.querySelectorAll("[role=option]").forEach((option, i) => option.setAttribute("aria-selected", String(i === active)));
    input.setAttribute("aria-activedescendant", `${optionId}-${active}`);
  }

  function pick(item) {
    close();
    choose(item);
  }

  async function update() {
    const match = pattern.exec(input.value);
    if (!match) return close();
    const query = match[1].toLowerCase();
    const all = await loadItems();
    shown = all.filter((item) => matches(item, query)).slice(0, MAX_SHOWN);
    if (!shown.length) return close();
    menu.replaceChildren(...shown.map((item, i) => {
      const option = document.createElement("li");
      option.id = `${optionId}-${i}`;
      option.setAttribute("role", "option");
      label(item, option);
      option.addEventListener("mousedown", (event) => event.preventDefault()); // the message box keeps the focus
      option.addEventListener("click", () => pick(item));
      return option;
    }));
    menu.classList.remove("is-hidden");
    input.setAttribute("aria-controls", menuId);
    highlight(0);
    status.textContent = format(found, { count: shown.length });
  }

  input.addEventListener("input", update);
  input.addEventListener("blur", () => setTimeout(() => { if (document.activeElement !== input) close(); }));

  // Capture, on the form: the menu's keys come before the message box's own (Enter would send).
  form.addEventListener("keydown", (event) => {
    if (event.target !== input || !isOpen() || event.isComposing) return;
    const moves = { ArrowDown: active + 1, ArrowUp: active - 1 };
    if (event.key in moves) {
      highlight(moves[event.key]);
    } else if ((event.key === "Enter" && !event.shiftKey) || event.key === "Tab") {
      pick(shown[active]);
    } else if (event.key === "Escape") {
      close();
    } else {
      return;
    }
    event.preventDefault();
    event.stopImmediatePropagation();
  }, true);
}
