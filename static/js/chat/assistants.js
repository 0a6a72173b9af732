// Assistants in the composer: typing "@" (then part of a name) opens a menu of the assistants the user may use
// (GET /api/v1/assistants/available/); choosing one starts a new chat with it (its link).

import { api } from "./api.js";
import { composerMenu } from "./composer-menu.js";
import { input } from "./composer.js";
import { strings } from "../util.js";

composerMenu({
  menuId: "assistant-menu",
  optionId: "assistant-option",
  pattern: /^@([\p{L}\p{N}_ -]*)$/u,
  load: async () => (await api("GET", "assistants/available/?page_size=200")).results,
  matches: (assistant, query) => assistant.name.toLowerCase().includes(query) || assistant.slug.startsWith(query),
  label(assistant, option) {
    const emoji = document.createElement("span");
    emoji.setAttribute("aria-hidden", "true");
    emoji.textContent = assistant.emoji || "🤖";
    option.append(emoji, ` ${assistant.name}`);
  },
  choose(assistant) {
    input.value = "";
    input.dispatchEvent(new Event("input", { bubbles: true })); // the draft is cleared too
    window.location.assign(assistant.url);
  },
  found: strings.assistants_found,
});
