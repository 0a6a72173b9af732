// Voice, with the browser's own speech services only (no server model): dictation into the composer where the
// browser has speech recognition, and answers read aloud with its speech synthesis. Each control shows only where
// the browser has the service.

import { autosize, input, saveDraft, showError, updateSendState } from "./composer.js";
import { strings } from "../util.js";

const Recognition = window.SpeechRecognition || window.webkitSpeechRecognition;
const dictateButton = document.getElementById("composer-dictate");
let recognition = null;

function startDictation() {
  recognition = new Recognition();
  recognition.lang = document.documentElement.lang || "en";
  recognition.continuous = true;
  recognition.interimResults = false;
  recognition.addEventListener("result", (event) => {
    for (let index = event.resultIndex; index < event.results.length; index += 1) {
      const said = event.results[index].isFinal ? event.results[index][0].transcript.trim() : "";
      if (said) input.value = input.value && !/\s$/.test(input.value) ? `${input.value} ${said}` : input.value + said;
    }
    autosize();
    saveDraft();
    updateSendState();
  });
  recognition.addEventListener("error", (event) => {
    if (!["aborted", "no-speech"].includes(event.error)) showError(strings.dictation_failed);
  });
  recognition.addEventListener("end", () => {
    recognition = null;
    dictateButton.setAttribute("aria-pressed", "false");
  });
  recognition.start();
  dictateButton.setAttribute("aria-pressed", "true");
}

if (Recognition && dictateButton) {
  dictateButton.classList.remove("is-hidden");
  dictateButton.addEventListener("click", () => {
    if (recognition) recognition.stop();
    else startDictation();
    input.focus();
  });
}

const speech = window.speechSynthesis;
const readAloudTemplate = document.getElementById("read-aloud-template");
let speaking = null;

/** A "Read aloud" button on each finished answer under `root` (where the browser can speak). */
export function addReadAloud(root) {
  if (!speech || !readAloudTemplate) return;
  for (const actions of root.querySelectorAll(".turn-assistant[data-status=complete] .turn-actions")) {
    if (actions.querySelector("[data-action=read-aloud]")) continue;
    const button = readAloudTemplate.content.firstElementChild.cloneNode(true);
    const copy = actions.querySelector("[data-action=copy-turn]");
    if (copy) copy.after(button);
    else actions.append(button);
  }
}

/** Read the answer of `button` aloud; pressed again (or another answer's button), it stops. */
export function readAloud(button) {
  const previous = speaking;
  speaking = null;
  previous?.setAttribute("aria-pressed", "false");
  speech.cancel();
  if (previous === button) return;
  const utterance = new SpeechSynthesisUtterance(button.closest(".turn").querySelector(".turn-body").innerText);
  utterance.lang = document.documentElement.lang || "en";
  const finished = () => {
    if (speaking !== button) return;
    speaking = null;
    button.setAttribute("aria-pressed", "false");
  };
  utterance.addEventListener("end", finished);
  utterance.addEventListener("error", finished);
  speaking = button;
  button.setAttribute("aria-pressed", "true");
  speech.speak(utterance);
}
