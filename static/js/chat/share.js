// Share links: the dialog that shows this chat's link (the newest that still opens) and creates a new one.

import { conversationId, conversationUrl } from "./page.js";
import { request } from "./api.js";
import { showError } from "./composer.js";
import { format, strings } from "../util.js";

export const shareDialog = document.getElementById("share-dialog");
const shareForm = document.getElementById("share-form");

export async function openShareDialog() {
  if (!conversationId) return;
  const current = document.getElementById("share-current");
  current.classList.add("is-hidden");
  document.getElementById("share-result").classList.add("is-hidden");
  document.getElementById("share-create").disabled = false;
  shareForm.elements.include_files.checked = false; // files are shared only when ticked for this link
  shareDialog.showModal();
  try {
    const { link } = await request("GET", `${conversationUrl(conversationId)}share/current/`);
    if (!link) return;
    document.getElementById("share-current-url").value = link.url;
    document.getElementById("share-current-note").textContent = format(strings.share_current, { when: link.created });
    current.classList.remove("is-hidden");
  } catch {
    // Without it the dialog still makes a link; the list of shared links has them all.
  }
}

shareForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const create = document.getElementById("share-create");
  create.disabled = true;
  document.getElementById("share-result").classList.add("is-hidden");
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
