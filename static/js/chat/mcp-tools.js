// The chat's MCP tools (Settings panel, present when the site has MCP servers): each box saved as soon as it
// changes, as the whole list, through PATCH /api/v1/conversations/<id>/. A new chat is created with them.
// The page is rendered with what the worker knows of its servers, without waiting for them: while one is starting
// or unavailable, the list is asked for again (its data-poll-seconds) and replaced, the chat's boxes ticked again.

import { conversationId } from "./page.js";
import { api } from "./api.js";
import { strings } from "../util.js";

const list = document.getElementById("mcp-tools");
// The chat's tools, those of a server not listed now included: a server that is down keeps its tools in the chat.
const enabled = new Set(JSON.parse(document.getElementById("mcp-enabled")?.textContent || "[]"));

list?.addEventListener("change", async (event) => {
  if (event.target.name !== "mcp_tool") return;
  const box = event.target;
  const keep = (on) => (on ? enabled.add(box.value) : enabled.delete(box.value));
  keep(box.checked);
  if (!conversationId) return;
  const status = document.getElementById("settings-status");
  try {
    await api("PATCH", `conversations/${conversationId}/`, { mcp_tools: [...enabled] });
    status.textContent = strings.saved;
  } catch (error) {
    box.checked = !box.checked; // the chat keeps what the server has
    keep(box.checked);
    status.textContent = error.message;
  }
});

function askAgainLater() {
  const seconds = Number(document.getElementById("mcp-servers")?.dataset.pollSeconds);
  if (seconds > 0) setTimeout(refresh, seconds * 1000);
}

async function refresh() {
  const servers = document.getElementById("mcp-servers");
  let html;
  try {
    const response = await fetch(servers.dataset.url, { credentials: "same-origin" });
    if (!response.ok) return;
    html = await response.text();
  } catch {
    setTimeout(refresh, 10_000); // offline for a moment: the list stays as it is until the next try
    return;
  }
  const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("mcp-servers");
  if (!fresh) return;
  servers.replaceWith(fresh);
  for (const box of fresh.querySelectorAll('input[name="mcp_tool"]')) box.checked = enabled.has(box.value);
  askAgainLater();
}

if (list) askAgainLater();
