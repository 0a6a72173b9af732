// Files for the next message: picked with the paperclip button, dropped on the chat, or pasted into the
// composer. Each is uploaded at once (POST /api/v1/attachments/: the server checks and reads it) and shown
// as a chip above the composer; the message then sends their ids. A refused file says why and is not kept: the
// server's limits (files per message, bytes per file) are checked as files are added, so nothing over them is
// uploaded, and the server checks again.

import { csrfToken, format, strings } from "./util.js";

export function setupAttachments({
  apiBase, input, dropZone, listEl, fileInput, button, showError, limits, onChange = () => {}, onAction = () => {},
}) {
  const items = []; // { id, name, kind, url, el } once uploaded; { name, el, pending: true } while uploading

  function render(item) {
    const chip = item.el || document.createElement("li");
    chip.className = `pending-file${item.pending ? " is-uploading" : ""}`;
    chip.replaceChildren();
    if (item.kind === "image" && item.url) {
      const img = document.createElement("img");
      img.src = item.url;
      img.alt = "";
      img.className = "pending-thumb";
      chip.append(img);
    }
    const name = document.createElement("span");
    name.className = "pending-name";
    name.textContent = item.pending ? format(strings.file_uploading, { name: item.name }) : item.name;
    chip.append(name);
    if (!item.pending) {
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "icon-btn pending-remove";
      remove.textContent = "×";
      remove.setAttribute("aria-label", format(strings.file_remove, { name: item.name }));
      remove.addEventListener("click", () => discard(item));
      chip.append(remove);
    }
    item.el = chip;
    if (!chip.isConnected) listEl.append(chip);
    listEl.classList.toggle("is-hidden", items.length === 0);
    onChange();
  }

  async function upload(file) {
    const item = { name: file.name || strings.pasted_file, pending: true };
    items.push(item);
    render(item);
    const body = new FormData();
    body.append("file", file, item.name);
    try {
      const response = await fetch(`${apiBase}attachments/`, {
        method: "POST", credentials: "same-origin", body,
        headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
      });
      const payload = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(payload?.error?.message || strings.file_failed);
      Object.assign(item, { id: payload.id, kind: payload.kind, url: payload.url, name: payload.name, pending: false });
      render(item);
      if (payload.text_truncated) showError(format(strings.file_truncated, { name: payload.name }));
    } catch (error) {
      forget(item);
      showError(`${item.name}: ${error.message}`);
    }
  }

  function forget(item) {
    items.splice(items.indexOf(item), 1);
    item.el?.remove();
    listEl.classList.toggle("is-hidden", items.length === 0);
    onChange();
  }

  async function discard(item) {
    forget(item);
    if (item.id) {
      await fetch(`${apiBase}attachments/${item.id}/`, {
        method: "DELETE", credentials: "same-origin", headers: { "X-CSRFToken": csrfToken() },
      }).catch(() => {});
    }
    input.focus();
  }

  function add(files) {
    onAction(); // files picked, dropped or pasted: an earlier refusal is no longer the news
    const problems = [];
    const room = Math.max(limits.files - items.length, 0);
    const over = files.slice(room);
    if (over.length) {
      const names = over.map((file) => file.name || strings.pasted_file).join(", ");
      problems.push(format(strings.file_limit, { limit: limits.files, names }));
    }
    for (const file of files.slice(0, room)) {
      if (file.size > limits.bytes) {
        problems.push(format(strings.file_too_large, { name: file.name || strings.pasted_file, limit: limits.size }));
      } else {
        upload(file);
      }
    }
    if (problems.length) showError(problems.join(" "));
  }

  button.addEventListener("click", () => fileInput.click());
  fileInput.addEventListener("change", () => {
    add([...fileInput.files]);
    fileInput.value = "";
  });
  input.addEventListener("paste", (event) => {
    const files = [...(event.clipboardData?.files || [])];
    if (files.length) {
      event.preventDefault(); // a pasted screenshot or file becomes an attachment, not text
      add(files);
    }
  });
  dropZone.addEventListener("dragover", (event) => {
    if (![...(event.dataTransfer?.types || [])].includes("Files")) return;
    event.preventDefault();
    dropZone.classList.add("is-dropping");
  });
  dropZone.addEventListener("dragleave", (event) => {
    if (!dropZone.contains(event.relatedTarget)) dropZone.classList.remove("is-dropping");
  });
  dropZone.addEventListener("drop", (event) => {
    dropZone.classList.remove("is-dropping");
    const files = [...(event.dataTransfer?.files || [])];
    if (!files.length) return;
    event.preventDefault();
    add(files);
  });

  return {
    /** Uploaded files ready to send (none while one is still uploading: the caller waits). */
    ready: () => !items.some((item) => item.pending),
    ids: () => items.filter((item) => !item.pending).map((item) => item.id),
    /** Files added (uploaded or still uploading). */
    count: () => items.length,
    /** Take the ready files for a message being sent: their chips leave the composer. */
    take() {
      const taken = items.filter((item) => !item.pending);
      for (const item of taken) forget(item);
      return taken.map(({ id, name, kind, url }) => ({ id, name, kind, url }));
    },
    /** Put files back (the message was refused before it was stored). */
    restore(taken) {
      for (const file of taken) {
        const item = { ...file, pending: false };
        items.push(item);
        render(item);
      }
    },
  };
}

/** The chips a sent message shows (as the server renders them: thumbnails for images, download chips). */
export function attachmentList(files) {
  const list = document.createElement("ul");
  list.className = "turn-attachments";
  list.setAttribute("aria-label", strings.attached_files);
  for (const file of files) {
    const li = document.createElement("li");
    const link = document.createElement("a");
    link.href = file.url;
    if (file.kind === "image") {
      link.target = "_blank";
      link.rel = "noopener";
      const img = document.createElement("img");
      img.className = "attachment-thumb";
      img.src = file.url;
      img.alt = file.name;
      link.append(img);
    } else {
      link.className = "attachment-chip";
      link.download = file.name;
      const name = document.createElement("span");
      name.textContent = file.name;
      link.append(name);
    }
    li.append(link);
    list.append(li);
  }
  return list;
}
