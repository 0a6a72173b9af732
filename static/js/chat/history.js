// The history sidebar's list: loaded page by page on scroll, searched, the archived tab or a folder's chats; a new or
// answered chat moves to the top; arrow keys move between rows; its scroll survives opening a chat.

import { chat, conversationId, conversationUrl, temporary } from "./page.js";
import { fragment } from "./api.js";
import { menuItems } from "./menus.js";
import { strings } from "../util.js";

export const historyEl = document.getElementById("history");
export const searchInput = document.getElementById("history-search");
let showArchived = false;
export let currentFolder = chat.dataset.project || ""; // a project open on load: a new chat in it, or one of its chats

/** Show one folder's chats ("" for all). */
export function setCurrentFolder(id) {
  currentFolder = id;
}

function historyUrl(extra = {}) {
  const params = new URLSearchParams();
  if (searchInput.value.trim()) params.set("q", searchInput.value.trim());
  if (showArchived) params.set("archived", "1");
  if (currentFolder) params.set("folder", currentFolder);
  for (const [key, value] of Object.entries(extra)) params.set(key, value);
  return `${historyEl.dataset.url}?${params}`;
}

export function markActive() {
  for (const item of historyEl.querySelectorAll(".history-item")) {
    item.classList.toggle("is-active", item.dataset.id === conversationId);
  }
}

function historyListShown() {
  // The list this chat is in (the plain list, or its project's; not a search or the archive): where a new or answered
  // chat goes to the top.
  return !showArchived && currentFolder === chat.dataset.project && !searchInput.value.trim() && !temporary
    && !chat.dataset.temporary;
}

function todayHeading() {
  const existing = historyEl.querySelector('.history-group[data-group="today"]');
  if (existing) return existing;
  const heading = document.createElement("h2");
  heading.className = "history-group";
  heading.dataset.group = "today";
  heading.textContent = strings.today;
  // Below the pinned chats, if any.
  const pinned = [...historyEl.querySelectorAll('.history-item[data-pinned="1"]')].pop();
  if (pinned) pinned.after(heading);
  else historyEl.prepend(heading);
  return heading;
}

export function historyItem(id) {
  return historyEl.querySelector(`.history-item[data-id="${CSS.escape(id)}"]`);
}

/** A row's title, keeping its pin mark and running dot. */
export function setHistoryTitle(id, title) {
  const link = historyItem(id)?.querySelector(".history-link");
  if (!link) return;
  const marks = [...link.children];
  link.replaceChildren(title || strings.new_chat);
  link.prepend(...marks.filter((mark) => mark.classList.contains("pin-mark")));
  link.append(...marks.filter((mark) => !mark.classList.contains("pin-mark")));
  link.title = title;
}

export function removeHistoryItem(id) {
  historyItem(id)?.remove();
  removeEmptyGroups();
}

function removeEmptyGroups() {
  for (const group of historyEl.querySelectorAll(".history-group")) {
    if (!group.nextElementSibling?.classList.contains("history-item")) group.remove();
  }
}

export function addHistoryItem(id, title = document.getElementById("chat-title").textContent.trim()) {
  // A new chat is listed at once, as "New chat"; its title follows when the server has one.
  if (!historyListShown()) return;
  if (historyItem(id)) {
    markActive(); // listed already (another window's event can come first): it may be the chat just opened
    return;
  }
  const item = document.getElementById("history-item-template").content.firstElementChild.cloneNode(true);
  item.dataset.id = id;
  item.dataset.folder = currentFolder; // the list shown is the chat's own (historyListShown)
  const link = item.querySelector(".history-link");
  link.href = conversationUrl(id);
  link.textContent = title || strings.new_chat;
  historyEl.querySelector(".history-empty")?.remove();
  todayHeading().after(item);
  markActive();
}

export function bumpHistoryItem(id = conversationId, title = undefined) {
  // The chat just answered is the most recent one: move it to the top without reloading the list (which would
  // lose how far it was scrolled and loaded).
  if (!id || !historyListShown()) return;
  const item = historyItem(id);
  if (!item) {
    addHistoryItem(id, title);
    return;
  }
  if (item.dataset.pinned === "1") return; // pinned chats keep their own order
  const heading = todayHeading();
  if (heading.nextElementSibling !== item) heading.after(item);
  removeEmptyGroups();
}

export function showEmptyHistoryNote() {
  if (historyEl.querySelector(".history-item, .history-empty, .history-more")) return;
  historyEl.replaceChildren();
  refreshHistory();
}

let historyRequest = 0;

// A row's menu open when the list is reloaded (another window's change, a live event) stays open on the new row,
// its focused item still focused: the list must not close a menu under the user's pointer.
function openRowMenu() {
  const menu = historyEl.querySelector(".history-item details.item-menu[open]");
  if (!menu) return null;
  const focused = menu.contains(document.activeElement) ? document.activeElement.dataset.action : null;
  return { id: menu.closest(".history-item").dataset.id, focused };
}

function reopenRowMenu(was) {
  if (!was) return;
  const menu = historyEl.querySelector(`.history-item[data-id="${CSS.escape(was.id)}"] details.item-menu`);
  if (!menu) return;
  const focused = was.focused && menu.querySelector(`[data-action="${CSS.escape(was.focused)}"]`);
  // Opening fires "toggle" later, whose handler (menus.js) focuses the first item: the item is focused after it.
  if (focused) menu.addEventListener("toggle", () => focused.focus(), { once: true });
  menu.open = true;
}

export async function refreshHistory() {
  const request = ++historyRequest;
  try {
    const response = await fetch(historyUrl(), { credentials: "same-origin" });
    if (!response.ok || request !== historyRequest) return;
    const menuOpen = openRowMenu();
    historyEl.replaceChildren(fragment(await response.text()));
    reopenRowMenu(menuOpen);
    markActive();
    observeMore();
  } catch {
    // Offline: the list stays as it was.
  }
}

async function loadMore(button) {
  if (button.dataset.loading) return;
  button.dataset.loading = "1";
  try {
    const response = await fetch(historyUrl({ cursor: button.dataset.cursor }), { credentials: "same-origin" });
    if (!response.ok) throw new Error();
    const more = fragment(await response.text());
    // A page can start in the middle of the last group: don't repeat its heading.
    const headings = historyEl.querySelectorAll(".history-group");
    const lastGroup = headings[headings.length - 1]?.dataset.group;
    const firstHeading = more.querySelector(".history-group");
    if (firstHeading && firstHeading.dataset.group === lastGroup && more.firstElementChild === firstHeading) {
      firstHeading.remove();
    }
    // The open chat, shown on its own above the first page, is reached in its place: listed once.
    for (const item of more.querySelectorAll(".history-item")) {
      const shown = historyEl.querySelector(`.history-group[data-group="open"] + .history-item[data-id="${item.dataset.id}"]`);
      if (shown) {
        shown.previousElementSibling.remove();
        shown.remove();
      }
    }
    button.replaceWith(more);
    if (sidebarScrollWanted !== null) {
      historyEl.scrollTop = sidebarScrollWanted;
      sidebarScrollWanted = null;
    }
    markActive();
    observeMore();
  } catch {
    delete button.dataset.loading;
  }
}

const moreObserver = new IntersectionObserver(
  (entries) => {
    for (const entry of entries) if (entry.isIntersecting) loadMore(entry.target);
  },
  { root: historyEl, rootMargin: "200px" },
);

export function observeMore() {
  const button = historyEl.querySelector(".history-more");
  if (button) moreObserver.observe(button);
}

let searchTimer = null;
searchInput.addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(refreshHistory, 250);
});
searchInput.form.addEventListener("submit", (event) => {
  event.preventDefault();
  refreshHistory();
});

for (const tab of document.querySelectorAll(".history-tab")) {
  tab.addEventListener("click", () => {
    showArchived = tab.dataset.archived === "1";
    for (const other of document.querySelectorAll(".history-tab")) {
      other.setAttribute("aria-selected", String(other === tab));
    }
    refreshHistory();
  });
}

// The history list: one Tab stop per row (its link). Arrow keys move between rows; ArrowRight, Shift+F10 or the
// context-menu key open the row's menu.
historyEl.addEventListener("keydown", (event) => {
  const link = event.target.closest(".history-link");
  if (!link) return;
  const links = [...historyEl.querySelectorAll(".history-link")];
  const index = links.indexOf(link);
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    links[Math.max(0, Math.min(links.length - 1, index + (event.key === "ArrowDown" ? 1 : -1)))].focus();
  } else if (event.key === "ArrowRight" || event.key === "ContextMenu" || (event.key === "F10" && event.shiftKey)) {
    event.preventDefault();
    const menu = link.closest(".history-item").querySelector("details.item-menu");
    menu.open = true;
    menuItems(menu)[0]?.focus();
  }
});

// Opening a chat from the sidebar reloads the page: keep the sidebar where it was scrolled.
const SIDEBAR_SCROLL_KEY = "chatsite:sidebar-scroll";
let sidebarScrollWanted = null;
historyEl.addEventListener("click", (event) => {
  if (!event.target.closest(".history-link")) return;
  try {
    sessionStorage.setItem(SIDEBAR_SCROLL_KEY, String(historyEl.scrollTop));
  } catch {
    // No storage: the open chat is scrolled into view instead.
  }
});

export function restoreSidebarScroll() {
  let saved = null;
  try {
    saved = sessionStorage.getItem(SIDEBAR_SCROLL_KEY);
    sessionStorage.removeItem(SIDEBAR_SCROLL_KEY);
  } catch {
    // No storage.
  }
  if (saved !== null) {
    historyEl.scrollTop = Number(saved);
    // The page lists chats down to the open one; rows below it load next, then the scroll can reach its place.
    if (historyEl.scrollTop < Number(saved) - 1) sidebarScrollWanted = Number(saved);
  }
  const active = historyEl.querySelector(".history-item.is-active");
  if (!active) return;
  const list = historyEl.getBoundingClientRect();
  const row = active.getBoundingClientRect();
  if (row.bottom < list.top + 4 || row.top > list.bottom - 4) active.scrollIntoView({ block: "center" });
}

// History "Load more" buttons carry the cursor but no data-action: handle them here too.
historyEl.addEventListener("click", (event) => {
  const more = event.target.closest(".history-more");
  if (more) loadMore(more);
});
