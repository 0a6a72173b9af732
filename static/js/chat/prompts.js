// The prompt library in the composer: typing "/" (then part of a command) opens a menu of the user's saved prompts
// (GET /api/v1/prompts/); arrows choose, Enter or Tab inserts, Escape closes. A prompt with {{blanks}} asks for
// them in a small form first; the filled text goes into the message box, to read before sending.

import { api } from "./api.js";
import { composerMenu } from "./composer-menu.js";
import { input } from "./composer.js";
import { strings } from "../util.js";

const dialog = document.getElementById("prompt-dialog");
const dialogForm = document.getElementById("prompt-dialog-form");
const fieldsEl = document.getElementById("prompt-dialog-fields");
const BLANK = /\{\{\s*([\p{L}_][\p{L}\p{N}_ ]{0,39}?)\s*\}\}/gu;

let chosen = null;

function insert(text) {
  input.value = text;
  input.dispatchEvent(new Event("input", { bubbles: true })); // autosize, draft, send button
  input.focus();
  input.setSelectionRange(text.length, text.length);
}

function choose(prompt) {
  if (!prompt.variables.length) return insert(prompt.content);
  chosen = prompt;
  document.getElementById("prompt-dialog-title").textContent = `/${prompt.command} · ${prompt.title}`;
  fieldsEl.replaceChildren(...prompt.variables.map((name, i) => {
    const field = document.createElement("div");
    field.className = "field";
    const label = document.createElement("label");
    label.htmlFor = `prompt-blank-${i}`;
    label.textContent = name;
    const blank = document.createElement("input");
    blank.type = "text";
    blank.id = `prompt-blank-${i}`;
    blank.name = name;
    field.append(label, blank);
    return field;
  }));
  dialog.showModal();
  fieldsEl.querySelector("input").focus();
}

dialogForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const values = Object.fromEntries([...fieldsEl.querySelectorAll("input")].map((blank) => [blank.name, blank.value]));
  dialog.close();
  insert(chosen.content.replace(BLANK, (match, name) => values[name.trim()] ?? match));
});

document.getElementById("prompt-dialog-cancel").addEventListener("click", () => dialog.close());
dialog.addEventListener("close", () => input.focus());

composerMenu({
  menuId: "prompt-menu",
  optionId: "prompt-option",
  pattern: /^\/([\w-]*)$/u,
  load: async () => (await api("GET", "prompts/?page_size=200")).results,
  matches: (prompt, query) => prompt.command.startsWith(query) || prompt.title.toLowerCase().includes(query),
  label(prompt, option) {
    const command = document.createElement("code");
    command.textContent = `/${prompt.command}`;
    option.append(command, ` ${prompt.title}`);
  },
  choose,
  found: strings.prompts_found,
});
