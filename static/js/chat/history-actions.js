// The history rows' menu: rename, pin, move to a folder, archive, delete.

import { chat, conversationId, conversationUrl, deletedHere } from "./page.js";
import { api, request } from "./api.js";
import { draftKey, showError } from "./composer.js";
import { ask } from "./dialogs.js";
import { chooseFolder } from "./folders.js";
import { setTitle } from "./header.js";
import { refreshHistory, setHistoryTitle } from "./history.js";
import { strings } from "../util.js";

export async function historyAction(button) {
  const item = button.closest(".history-item");
  button.closest("details")?.removeAttribute("open");
  const id = item.dataset.id;
  const link = item.querySelector(".history-link");
  try {
    if (button.dataset.action === "rename") {
      const title = await ask({ message: strings.rename_prompt, value: link.textContent.trim(), okLabel: strings.save });
      if (title === null || !title.trim()) return;
      const updated = await api("PATCH", `conversations/${id}/`, { title: title.trim() });
      setHistoryTitle(id, updated.title);
      if (id === conversationId) setTitle(updated.title);
    } else if (button.dataset.action === "pin") {
      await request("POST", `${conversationUrl(id)}organize/`, { pinned: item.dataset.pinned !== "1" });
      await refreshHistory();
    } else if (button.dataset.action === "move") {
      const folder = await chooseFolder(item.dataset.folder);
      if (folder === null) return;
      await request("POST", `${conversationUrl(id)}organize/`, { folder: folder ? Number(folder) : null });
      await refreshHistory();
    } else if (button.dataset.action === "archive") {
      await api("PATCH", `conversations/${id}/`, { archived: item.dataset.archived !== "1" });
      item.remove();
    } else if (button.dataset.action === "delete") {
      const confirmed = await ask({ message: strings.delete_confirm, okLabel: strings.delete, danger: true });
      if (confirmed === null) return;
      deletedHere.add(id);
      await api("DELETE", `conversations/${id}/`);
      item.remove();
      if (id === conversationId) {
        try {
          localStorage.removeItem(draftKey());
        } catch {
          // Nothing stored.
        }
        window.location.assign(chat.dataset.homeUrl);
      }
    }
  } catch (error) {
    showError(error.message);
  }
}
