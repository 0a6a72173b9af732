// Folders in the sidebar: open one (its chats only), create, delete, and the dialog that moves a chat into one.

import { request } from "./api.js";
import { showError } from "./composer.js";
import { ask } from "./dialogs.js";
import { currentFolder, refreshHistory, setCurrentFolder } from "./history.js";
import { chat, conversationId, deletedHere } from "./page.js";
import { format, strings } from "../util.js";

const folderList = document.getElementById("folder-list");
const folderDialog = document.getElementById("folder-dialog");

function folderRows() {
  return [...folderList.querySelectorAll(".folder-row")];
}

export function openFolder(button) {
  // A folder's button filters the list to its chats; pressed again, back to all chats.
  const row = button.closest(".folder-row");
  const opening = button.getAttribute("aria-pressed") !== "true";
  for (const other of folderList.querySelectorAll(".folder-btn")) other.setAttribute("aria-pressed", "false");
  button.setAttribute("aria-pressed", String(opening));
  setCurrentFolder(opening ? row.dataset.folderId : "");
  refreshHistory();
}

function folderRow(id) {
  return folderList.querySelector(`.folder-row[data-folder-id="${CSS.escape(String(id))}"]`);
}

/** A project's row, added if not listed yet (this window made it, or another one did: its event can come first). */
export function showFolder(folder) {
  if (folderRow(folder.id)) {
    renameFolder(folder);
    return;
  }
  const row = document.createElement("li");
  row.className = "folder-row";
  row.dataset.folderId = String(folder.id);
  const button = document.createElement("button");
  button.type = "button";
  button.className = "folder-btn";
  button.dataset.action = "open-folder";
  button.setAttribute("aria-pressed", "false");
  const name = document.createElement("span");
  name.className = "folder-name";
  name.textContent = folder.name;
  button.append(name);
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "icon-btn folder-delete";
  remove.dataset.action = "delete-folder";
  remove.tabIndex = -1;
  remove.title = strings.delete_folder;
  remove.textContent = "×";
  const open = document.createElement("a");
  open.className = "icon-btn folder-open";
  open.href = folderList.closest(".folders").dataset.projectUrl.replace("/0/", `/${folder.id}/`);
  open.title = strings.project_settings_title;
  open.textContent = "⚙";
  row.append(button, open, remove);
  folderList.append(row);
  renameFolder(folder);
}

/** A project renamed (here or elsewhere): its row, its labels and the project chip of a chat in it. */
export function renameFolder(folder) {
  const row = folderRow(folder.id);
  if (row) {
    row.querySelector(".folder-name").textContent = folder.name;
    row.querySelector(".folder-open").setAttribute("aria-label", format(strings.project_settings, { name: folder.name }));
    row.querySelector(".folder-delete").setAttribute("aria-label", format(strings.delete_folder_named, { name: folder.name }));
  }
  const chip = document.getElementById("project-chip");
  if (chip && chat.dataset.project === String(folder.id)) chip.lastChild.textContent = folder.name;
}

/** The open chat's project chip, as its project is now: moved here or in another window (its conversation.updated). */
export function showChatProject(projectId) {
  const key = projectId == null ? "" : String(projectId);
  if ((chat.dataset.project || "") === key) return;
  chat.dataset.project = key;
  document.getElementById("project-chip")?.remove();
  const row = key && folderRow(key);
  if (!row) return;
  const chip = document.createElement("a");
  chip.className = "assistant-chip project-chip";
  chip.id = "project-chip";
  chip.href = row.querySelector(".folder-open").href;
  chip.title = strings.project_chip_title;
  const label = document.createElement("span");
  label.className = "visually-hidden";
  label.textContent = `${strings.project_chip_label} `;
  chip.append(label, row.querySelector(".folder-name").textContent);
  document.querySelector(".model-picker")?.before(chip);
}

/** A project deleted (here or elsewhere): its row goes; the list shown, if it was this project's, is all chats. With
 * its chats kept, they are back in the main list, and an open chat of it is in no project. */
export function forgetFolder(id, { chatsDeleted = false } = {}) {
  const key = String(id);
  const row = folderRow(key);
  const wasShown = currentFolder === key;
  if (!row && !wasShown && chat.dataset.project !== key) return; // deleted in this window: its event is no news
  row?.remove();
  if (wasShown) setCurrentFolder("");
  if (chat.dataset.project === key) {
    chat.dataset.project = "";
    document.getElementById("project-chip")?.remove();
  }
  if (wasShown || !chatsDeleted) refreshHistory();
}

export async function newFolder() {
  const name = await ask({ message: strings.folder_name_prompt, value: "", okLabel: strings.create });
  if (name === null || !name.trim()) return null;
  try {
    const folder = await request("POST", folderList.closest(".folders").dataset.createUrl, { name: name.trim() });
    showFolder(folder);
    return folder;
  } catch (error) {
    showError(error.message);
    return null;
  }
}

export async function deleteFolder(row) {
  const confirmed = await ask({ message: strings.delete_folder_confirm, okLabel: strings.delete, danger: true });
  if (confirmed === null) return;
  // Asked: its chats go too, or stay (back in the main list: "Keep them" closes this second question).
  const deleteChats = (await ask({ message: strings.delete_project_chats, okLabel: strings.delete_project_chats_ok, danger: true })) !== null;
  const openChatGoes = deleteChats && conversationId && chat.dataset.project === row.dataset.folderId;
  if (openChatGoes) deletedHere.add(conversationId); // its deletion is no news to this window: it leaves the chat
  try {
    await request("POST", `${folderList.closest(".folders").dataset.createUrl}${row.dataset.folderId}/delete/`, { delete_chats: deleteChats });
  } catch (error) {
    showError(error.message);
    return;
  }
  if (openChatGoes) {
    window.location.assign(chat.dataset.homeUrl);
    return;
  }
  forgetFolder(row.dataset.folderId, { chatsDeleted: deleteChats });
}

export function chooseFolder(current) {
  // The folder a chat goes in: "" for none, a folder's id, or null when cancelled. A new name makes a folder.
  const select = document.getElementById("folder-select");
  const none = new Option(strings.no_folder, "");
  select.replaceChildren(none, ...folderRows().map((row) => new Option(row.querySelector(".folder-name").textContent, row.dataset.folderId)));
  select.value = current || "";
  const fresh = document.getElementById("folder-new");
  fresh.value = "";
  folderDialog.returnValue = "";
  folderDialog.showModal();
  return new Promise((resolve) => {
    folderDialog.addEventListener(
      "close",
      async () => {
        if (folderDialog.returnValue !== "ok") return resolve(null);
        if (!fresh.value.trim()) return resolve(select.value);
        try {
          const folder = await request("POST", folderList.closest(".folders").dataset.createUrl, { name: fresh.value.trim() });
          showFolder(folder);
          resolve(String(folder.id));
        } catch (error) {
          showError(error.message);
          resolve(null);
        }
      },
      { once: true },
    );
  });
}
