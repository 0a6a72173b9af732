// A list of knowledge documents with its upload form (a base's page, a project's page): a file is uploaded through
// the REST API (the form's data-api) with its upload percentage shown, then the page's regions marked
// data-upload-refresh are replaced by the server's current ones (the new row, with its delete form) without a
// reload, keeping the boxes the user ticked or cleared there but has not saved yet, and each row still queued or being
// indexed follows its progress from the API until it is ready or failed.

import { csrfToken, format, strings } from "../util.js";

const POLL_MS = 1000;
const FINISHED = ["ready", "failed"];

function describe(document_) {
  if (document_.status === "ready") {
    return document_.passage_count === 1 ? strings.document_one_passage : format(strings.document_passages, { count: document_.passage_count });
  }
  if (document_.status === "failed") return format(strings.document_failed, { error: document_.error });
  if (document_.status === "queued") return strings.document_queued;
  return format(strings.document_indexing, { done: document_.pages_done, total: document_.pages_total });
}

function show(row, document_) {
  row.dataset.status = document_.status;
  row.querySelector(".document-status").textContent = describe(document_);
  const bar = row.querySelector("progress");
  bar.value = document_.progress;
  bar.hidden = FINISHED.includes(document_.status);
}

async function follow(row) {
  const id = row.dataset.documentId;
  while (row.isConnected && !FINISHED.includes(row.dataset.status)) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    const response = await fetch(`/api/v1/knowledge-documents/${id}/`, { credentials: "same-origin" });
    if (!response.ok) return;
    show(row, await response.json());
  }
}

export function followDocuments(list) {
  // Settles when every row has finished (ready or failed), or left the page.
  return Promise.all([...list.querySelectorAll(".knowledge-document")].map(follow));
}

function upload(url, file, onPercent) {
  // XMLHttpRequest: fetch reports no upload progress.
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", url);
    request.setRequestHeader("X-CSRFToken", csrfToken());
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onPercent(Math.round((100 * event.loaded) / event.total));
    });
    request.addEventListener("load", () => {
      let body = null;
      try {
        body = JSON.parse(request.responseText);
      } catch {
        // Not JSON: a proxy's error page.
      }
      if (request.status === 201) resolve(body);
      else reject(new Error(body?.error?.message || format(strings.upload_failed, { status: request.status })));
    });
    request.addEventListener("error", () => reject(new Error(strings.upload_unreachable)));
    const data = new FormData();
    data.append("file", file);
    request.send(data);
  });
}

function unsavedChoices(region) {
  // The boxes the user changed since the page was loaded: the server's page has them as they were saved.
  return [...region.querySelectorAll("input[type=checkbox], input[type=radio]")]
    .filter((box) => box.checked !== box.defaultChecked)
    .map((box) => ({ name: box.name, value: box.value, checked: box.checked }));
}

function keepChoices(region, choices) {
  for (const { name, value, checked } of choices) {
    const box = [...region.querySelectorAll("input")].find((input) => input.name === name && input.value === value);
    if (box) box.checked = checked;
  }
}

async function refreshRegions() {
  // The page as the server has it now: its rows (with their delete forms) and, on a project's page, its bases (the
  // first upload makes the project's own base, ticked), with the user's unsaved ticks kept.
  const response = await fetch(window.location.href, { credentials: "same-origin" });
  if (!response.ok) return false;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const region of document.querySelectorAll("[data-upload-refresh]")) {
    const replacement = fresh.getElementById(region.id);
    if (!replacement) continue;
    const choices = unsavedChoices(region);
    const imported = document.importNode(replacement, true);
    region.replaceWith(imported);
    keepChoices(imported, choices);
  }
  return true;
}

export function enableUploads(form) {
  const status = form.querySelector("#upload-status");
  const bar = form.querySelector("#upload-progress");
  const button = form.querySelector("button[type=submit]");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = form.elements.file.files[0];
    if (!file) return;
    button.disabled = true;
    bar.value = 0;
    bar.hidden = false;
    const showPercent = (percent) => {
      bar.value = percent;
      status.textContent = format(strings.document_uploading, { name: file.name, percent: `${percent}%` });
    };
    showPercent(0);
    try {
      await upload(form.dataset.api, file, showPercent);
    } catch (error) {
      status.textContent = error.message;
      return;
    } finally {
      bar.hidden = true;
      button.disabled = false;
    }
    status.textContent = strings.document_uploaded;
    form.reset();
    if (!(await refreshRegions())) {
      window.location.reload();
      return;
    }
    await followDocuments(document.getElementById("documents"));
    // Its row now says how it ended: the upload's line would only repeat an older state.
    if (status.textContent === strings.document_uploaded) status.textContent = "";
  });
}
