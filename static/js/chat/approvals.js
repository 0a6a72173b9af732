// Tool calls that wait for the user: a `tool_approval` event shows the call (its tool and input) with Allow and
// Refuse above the answer being written; the choice goes to the call's approval endpoint, and the answer goes on.

import { request } from "./api.js";
import { showError } from "./composer.js";
import { format, strings } from "../util.js";

/** A `tool_approval` event: ask the user about the call, once (a followed answer replays its events). */
export function showApproval(answerEl, data) {
  const callId = data.tool_call.id;
  if (document.querySelector(`.tool-approval[data-call-id="${CSS.escape(callId)}"]`)) return;
  const box = document.createElement("div");
  box.className = "tool-approval";
  box.dataset.callId = callId;
  box.dataset.url = data.approval_url;
  box.setAttribute("role", "group");
  const question = document.createElement("p");
  question.textContent = format(strings.approval_asked, { tool: data.tool_call.function.name });
  const input = document.createElement("pre");
  input.textContent = data.tool_call.function.arguments;
  const note = document.createElement("p");
  note.className = "help";
  note.textContent = format(strings.approval_timeout, { seconds: data.timeout_seconds });
  const actions = document.createElement("div");
  actions.className = "tool-approval-actions";
  for (const [allow, label, style] of [[true, strings.approval_allow, "btn-primary"], [false, strings.approval_refuse, "btn-secondary"]]) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = `btn btn-small ${style}`;
    button.textContent = label;
    button.addEventListener("click", () => decide(box, allow));
    actions.append(button);
  }
  box.append(question, input, note, actions);
  answerEl.before(box);
  actions.querySelector("button").focus();
}

async function decide(box, allow) {
  const buttons = box.querySelectorAll("button");
  for (const button of buttons) button.disabled = true;
  try {
    await request("POST", box.dataset.url, { allow });
  } catch (error) {
    for (const button of buttons) button.disabled = false;
    showError(error.message);
    return;
  }
  box.querySelector(".tool-approval-actions").replaceChildren(allow ? strings.approval_allowed : strings.approval_refused);
}

/** The call ran (or was refused): its question goes; the step shows what happened. */
export function settleApproval(callId) {
  document.querySelector(`.tool-approval[data-call-id="${CSS.escape(callId)}"]`)?.remove();
}
