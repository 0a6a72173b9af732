// Answers as they are written: server-sent events read over fetch, played into the page (picked up again after a
// dropped connection), and the stop button.

import { apiBase, chat, conversationId, run } from "./page.js";
import { api, apiError } from "./api.js";
import { autosize, hideError, input, saveDraft, setBusy, settleError, showError, stopButton } from "./composer.js";
import { refreshTitle, setTitle, titleEl } from "./header.js";
import { bumpHistoryItem } from "./history.js";
import { modelSaved } from "./settings.js";
import {
  finishLocally, markInterrupted, nearBottom, newTurnElement, renderStreaming, replaceWithServerTurn, scrollToBottom,
  turnsEl,
} from "./turns.js";
import { showToolStep } from "./tools.js";
import { settleApproval, showApproval } from "./approvals.js";
import { csrfToken, strings } from "../util.js";

async function* readEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      let id = 0;
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("id:")) id = Number(line.slice(3).trim()) || 0;
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { name, id, data: JSON.parse(data.join("\n")) };
    }
  }
}

/**
 * POST to a streaming endpoint and play its events into the page.
 * `userEl`: the optimistic user turn (removed again if the server refuses before storing anything).
 * `replaceEl`: the answer a new version is written for (its place is taken once the server has stored it).
 * `onRefused`: called instead of putting the draft back when the server refuses before storing anything.
 */
export async function streamAnswer(
  path, body, { userEl = null, replaceEl = null, draft = "", onRefused = null, initialText = "" } = {},
) {
  // `body` null: follow an answer already being written (GET), from its first event. A "busy" error stays while
  // it is written. `initialText`: a continued answer's text so far, which its new text follows.
  if (body !== null) hideError();
  setBusy(true);
  if (body !== null) await modelSaved();
  const thisRun = {};
  run.current = thisRun;
  run.stopRequested = false;
  run.controller = new AbortController();
  // The composer is released as soon as the answer is stored, even if a title event is still to come.
  const release = () => {
    if (run.current !== thisRun) return;
    run.current = null;
    run.controller = null;
    setBusy(false);
    if (answerEl || body === null) settleError("answer-ends"); // an answer this page showed has ended
  };
  let answerEl = null;
  let text = initialText;
  let finished = false;
  const shownSteps = new Set();
  try {
    let response;
    try {
      const following = body === null;
      response = await fetch(apiBase + path, {
        method: following ? "GET" : "POST",
        credentials: "same-origin",
        headers: following
          ? { Accept: "text/event-stream" }
          : { "Content-Type": "application/json", Accept: "text/event-stream", "X-CSRFToken": csrfToken() },
        body: following ? undefined : JSON.stringify({ ...body, stream: true }),
        signal: run.controller.signal,
      });
    } catch {
      throw Object.assign(new Error(strings.send_failed), { beforeStream: true });
    }
    if (!response.ok) throw Object.assign(await apiError(response), { beforeStream: true });
    if (response.status === 204 && replaceEl) {
      // Nothing is being written any more: show the answer as stored.
      finished = true;
      await replaceWithServerTurn(replaceEl, replaceEl.dataset.turnId).catch(() => {});
      return;
    }

    let lastId = 0;
    const play = async (stream) => {
      for await (const { name, id, data } of readEvents(stream)) {
        if (id) lastId = id;
        if (name === "turn") {
          if (userEl && data.user_turn) userEl.dataset.turnId = data.user_turn.id;
          answerEl = newTurnElement("assistant", text); // a continued answer starts with its text so far
          answerEl.dataset.turnId = data.assistant_turn.id;
          if (replaceEl) replaceEl.replaceWith(answerEl);
          else turnsEl.append(answerEl);
          scrollToBottom();
        } else if (name === "error" && !answerEl && replaceEl) {
          // Followed an answer that was interrupted (its server stopped): show it as stored, failed.
          finished = true;
          await replaceWithServerTurn(replaceEl, data.assistant_turn.id).catch(() => {});
          release();
        } else if (name === "delta") {
          const follow = nearBottom();
          text += data.text;
          renderStreaming(answerEl, text);
          if (follow) requestAnimationFrame(scrollToBottom);
        } else if (name === "tool_approval") {
          showApproval(answerEl, data);
        } else if (name === "tool_result") {
          // A step of the answer ran on the server: it is stored above the answer, which starts again.
          settleApproval(data.tool_call.id);
          showToolStep(answerEl, data, shownSteps);
          text = "";
          renderStreaming(answerEl, text);
        } else if (name === "done" || name === "error") {
          finished = true;
          try {
            answerEl = await replaceWithServerTurn(answerEl, data.assistant_turn.id);
          } catch {
            // The answer is stored; if its rendered form can't be fetched, show what arrived as text.
            const failed = name === "error" || data.assistant_turn.status !== "complete";
            if (failed) markInterrupted(answerEl, text, data.error?.message || strings.stopped);
            else finishLocally(answerEl, text);
          }
          release();
          // The optimistic user bubble becomes the server's version too (with its copy and edit buttons).
          if (userEl?.dataset.turnId) await replaceWithServerTurn(userEl, userEl.dataset.turnId).catch(() => {});
        } else if (name === "title") {
          setTitle(data.title);
        }
      }
    };
    await play(response);
    // The connection dropped mid-answer: the answer goes on on the server; pick it up where it was.
    for (let attempt = 0; !finished && answerEl && !run.stopRequested && attempt < 3; attempt += 1) {
      let again;
      try {
        again = await fetch(`${apiBase}conversations/${conversationId}/stream/`, {
          credentials: "same-origin",
          headers: { Accept: "text/event-stream", "Last-Event-ID": String(lastId) },
          signal: run.controller.signal,
        });
      } catch {
        continue;
      }
      if (again.status === 204) {
        finished = true;
        answerEl = await replaceWithServerTurn(answerEl, answerEl.dataset.turnId).catch(() => answerEl);
        release();
      } else if (again.ok) {
        await play(again);
      }
    }
    if (!finished) throw new Error(strings.network_lost);
  } catch (error) {
    // "Busy": another window's answer is being written; the error goes when it ends (followed here: live.js).
    const until = error.code === "busy" ? "answer-ends" : "next-action";
    if (error.code === "busy") chat.dispatchEvent(new CustomEvent("chat:busy"));
    if (error.beforeStream && onRefused) {
      await onRefused();
      showError(error.message, { until });
    } else if (error.beforeStream) {
      // Nothing was stored: put the message back in the composer.
      if (userEl) {
        userEl.remove();
        input.value = draft;
        autosize();
        saveDraft();
      }
      showError(error.message, { until });
    } else if (answerEl && !finished) {
      if (run.stopRequested) {
        await settleStopped(answerEl, text);
      } else {
        markInterrupted(answerEl, text, strings.network_lost);
      }
    } else if (!finished) {
      showError(error.message || strings.load_failed);
    }
  } finally {
    release();
    chat.classList.toggle("has-turns", turnsEl.querySelector(".turn") !== null);
    bumpHistoryItem();
    if (conversationId && titleEl.textContent.trim() === strings.new_chat) refreshTitle();
  }
}

async function settleStopped(answerEl, text) {
  // The stream was cut after a stop: show the stored (cancelled) answer if the server has it already.
  try {
    const rendered = await replaceWithServerTurn(answerEl, answerEl.dataset.turnId);
    if (rendered.dataset.status === "cancelled") return;
    markInterrupted(rendered, text, strings.stopped);
  } catch {
    markInterrupted(answerEl, text, strings.stopped);
  }
}

export async function stop() {
  if (!run.busy || run.stopRequested) return;
  run.stopRequested = true;
  stopButton.disabled = true;
  const controller = run.controller;
  try {
    await api("POST", `conversations/${conversationId}/stop/`);
  } catch {
    // Aborting below also stops the answer: the server notices the closed stream.
  }
  // The server ends the stream with a `done` (cancelled) event; cut it if that takes too long.
  setTimeout(() => {
    if (run.controller === controller && controller) controller.abort();
  }, 3000);
}
