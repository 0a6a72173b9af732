// A chat's knowledge bases (the Settings panel): saved as soon as a box changes, through
// PUT /api/v1/conversations/<id>/knowledge-bases/. A new chat is created with the boxes checked (chat/sending.js).

import { conversationId } from "../chat/page.js";
import { api } from "../chat/api.js";
import { strings } from "../util.js";

const fieldset = document.querySelector(".knowledge-setting");

fieldset?.addEventListener("change", async () => {
  if (!conversationId) return; // a new chat: sent when it is created
  const ids = [...fieldset.querySelectorAll("input[name=knowledge_base]:checked")].map((box) => Number(box.value));
  const status = document.getElementById("settings-status");
  try {
    await api("PUT", `conversations/${conversationId}/knowledge-bases/`, { knowledge_bases: ids });
    status.textContent = strings.saved;
  } catch (error) {
    status.textContent = error.message;
  }
});
