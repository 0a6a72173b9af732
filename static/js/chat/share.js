// Share links: the dialog that creates a read-only link to this chat.

import { conversationId, conversationUrl } from "./page.js";
import { request } from "./api.js";
import { showError } from "./composer.js";

export const shareDialog = document.getElementById("share-dialog");
const shareForm = document.getElementById("share-form");

export function openShareDialog() {
  if (!conversationId) return;
  document.getElementById("share-result").classList.add("is-hidden");
  document.getElementById("share-create").disabled = false;
  shareForm.elements.include_files.checked = false; // files are shared only when ticked for this link
  shareDialog.showModal();
}

shareForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const create = document.getElementById("share-create");
  create.disabled = true;
  const days = shareForm.elements.expires_in_days.value;
  try {
    const link = await request("POST", `${conversationUrl(conversationId)}share/`, {
      display_name: shareForm.elements.display_name.value,
      expires_in_days: days ? Number(days) : null,
      include_files: shareForm.elements.include_files.checked,
    });
    const field = document.getElementById("share-url");
    field.value = link.url;
    document.getElementById("share-result").classList.remove("is-hidden");
    field.select();
  } catch (error) {
    create.disabled = false;
    showError(error.message);
    shareDialog.close();
  }
});
