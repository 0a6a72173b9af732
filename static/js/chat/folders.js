// Folders in the sidebar: open one (its chats only), create, delete, and the dialog that moves a chat into one.

import { request } from "./api.js";
import { showError } from "./composer.js";
import { ask } from "./dialogs.js";
import { currentFolder, refreshHistory, setCurrentFolder } from "./history.js";
import { strings } from "../util.js";

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

function addFolderRow(folder) {
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
  remove.setAttribute("aria-label", strings.delete_folder);
  remove.textContent = "×";
  row.append(button, remove);
  folderList.append(row);
}

export async function newFolder() {
  const name = await ask({ message: strings.folder_name_prompt, value: "", okLabel: strings.create });
  if (name === null || !name.trim()) return null;
  try {
    const folder = await request("POST", folderList.closest(".folders").dataset.createUrl, { name: name.trim() });
    addFolderRow(folder);
    return folder;
  } catch (error) {
    showError(error.message);
    return null;
  }
}

export async function deleteFolder(row) {
  const confirmed = await ask({ message: strings.delete_folder_confirm, okLabel: strings.delete, danger: true });
  if (confirmed === null) return;
  try {
    await request("POST", `${folderList.closest(".folders").dataset.createUrl}${row.dataset.folderId}/delete/`);
  } catch (error) {
    showError(error.message);
    return;
  }
  if (currentFolder === row.dataset.folderId) setCurrentFolder("");
  row.remove();
  refreshHistory();
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
          addFolderRow(folder);
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
