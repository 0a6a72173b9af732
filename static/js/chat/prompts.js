// The prompt library in the composer: typing "/" (then part of a command) opens a menu of the user's saved prompts
// (GET /api/v1/prompts/); arrows choose, Enter or Tab inserts, Escape closes. A prompt with {{blanks}} asks for
// them in a small form first; the filled text goes into the message box, to read before sending.

import { api } from "./api.js";
import { form, input } from "./composer.js";
import { format, strings } from "../util.js";

const menu = document.getElementById("prompt-menu");
const status = document.getElementById("prompt-menu-status");
const dialog = document.getElementById("prompt-dialog");
const dialogForm = document.getElementById("prompt-dialog-form");
const fieldsEl = document.getElementById("prompt-dialog-fields");
const MAX_SHOWN = 8;
const BLANK = /\{\{\s*([\p{L}_][\p{L}\p{N}_ ]{0,39}?)\s*\}\}/gu;

let prompts = null; // loaded on the first "/"
let shown = [];
let active = 0;
let chosen = null;

async function loadPrompts() {
  if (prompts === null) {
    try {
      prompts = (await api("GET", "prompts/?page_size=200")).results;
    } catch {
      prompts = [];
    }
  }
  return prompts;
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
  input.setAttribute("aria-activedescendant", `prompt-option-${active}`);
}

async function update() {
  const match = /^\/([\w-]*)$/u.exec(input.value);
  if (!match) return close();
  const query = match[1].toLowerCase();
  const all = await loadPrompts();
  shown = all.filter((p) => p.command.startsWith(query) || p.title.toLowerCase().includes(query)).slice(0, MAX_SHOWN);
  if (!shown.length) return close();
  menu.replaceChildren(...shown.map((prompt, i) => {
    const option = document.createElement("li");
    option.id = `prompt-option-${i}`;
    option.setAttribute("role", "option");
    const command = document.createElement("code");
    command.textContent = `/${prompt.command}`;
    option.append(command, ` ${prompt.title}`);
    option.addEventListener("mousedown", (event) => event.preventDefault()); // the message box keeps the focus
    option.addEventListener("click", () => choose(prompt));
    return option;
  }));
  menu.classList.remove("is-hidden");
  input.setAttribute("aria-controls", "prompt-menu");
  highlight(0);
  status.textContent = format(strings.prompts_found, { count: shown.length });
}

function insert(text) {
  input.value = text;
  input.dispatchEvent(new Event("input", { bubbles: true })); // autosize, draft, send button
  input.focus();
  input.setSelectionRange(text.length, text.length);
}

function choose(prompt) {
  close();
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

input.addEventListener("input", update);
input.addEventListener("blur", () => setTimeout(() => { if (document.activeElement !== input) close(); }));

// Capture, on the form: the menu's keys come before the message box's own (Enter would send).
form.addEventListener("keydown", (event) => {
  if (event.target !== input || !isOpen() || event.isComposing) return;
  const moves = { ArrowDown: active + 1, ArrowUp: active - 1 };
  if (event.key in moves) {
    highlight(moves[event.key]);
  } else if ((event.key === "Enter" && !event.shiftKey) || event.key === "Tab") {
    choose(shown[active]);
  } else if (event.key === "Escape") {
    close();
  } else {
    return;
  }
  event.preventDefault();
  event.stopImmediatePropagation();
}, true);
