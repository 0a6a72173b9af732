// A project's page kept up to date with the user's other windows, through their event stream (/c/events/,
// conversations/notifications.py): a rename or new instructions there show here (in the heading, the summary and
// the form's fields the user has not edited), and a deletion there says so here, with the page's forms disabled.

const page = document.getElementById("project-page");
const projectId = Number(page.dataset.projectId);
const SUMMARY_CHARS = 200; // as the template's truncatechars

function truncated(text) {
  return text.length > SUMMARY_CHARS ? `${text.slice(0, SUMMARY_CHARS - 1)}…` : text;
}

function showName(name) {
  const heading = document.getElementById("project-heading");
  const before = heading.textContent;
  if (document.title.startsWith(`${before} · `)) document.title = name + document.title.slice(before.length);
  heading.textContent = name;
}

function showSaved(field, value) {
  // A field the user has edited keeps their text: it is theirs to save, or not.
  if (!field) return;
  if (field instanceof HTMLSelectElement) {
    const saved = [...field.options].find((option) => option.defaultSelected) ?? field.options[0];
    const untouched = field.value === saved?.value;
    for (const option of field.options) option.defaultSelected = option.value === value;
    if (untouched) field.value = value;
    return;
  }
  const untouched = field.value === field.defaultValue;
  field.defaultValue = value;
  if (untouched) field.value = value;
}

function showGone() {
  if (page.classList.contains("is-gone")) return;
  page.classList.add("is-gone");
  document.getElementById("project-gone").classList.remove("is-hidden");
  document.getElementById("project-new-chat").classList.add("is-hidden");
  for (const form of page.querySelectorAll("form")) {
    for (const control of form.elements) control.disabled = true;
  }
}

async function refresh() {
  // The project as the server has it now (the event names only the new name).
  let response;
  try {
    response = await fetch(page.dataset.api, { credentials: "same-origin", headers: { Accept: "application/json" } });
  } catch {
    return; // offline: the next event or the next load shows it
  }
  if (response.status === 404) {
    showGone();
    return;
  }
  if (!response.ok) return;
  const project = await response.json();
  showName(project.name);
  const summary = document.getElementById("project-summary");
  summary.textContent = truncated(project.instructions);
  summary.hidden = !project.instructions;
  showSaved(document.getElementById("id_name"), project.name);
  showSaved(document.getElementById("id_instructions"), project.instructions);
  showSaved(document.getElementById("id_model"), project.model);
}

if (window.EventSource && page.dataset.eventsUrl) {
  const source = new EventSource(page.dataset.eventsUrl);
  // "listening" once the server listens for this window: from then on nothing is missed.
  source.addEventListener("listening", () => {
    page.dataset.live = "listening";
  });
  source.addEventListener("error", () => {
    page.dataset.live = "reconnecting";
  });
  source.addEventListener("project.updated", (event) => {
    const { project } = JSON.parse(event.data);
    if (project.id !== projectId) return;
    showName(project.name);
    refresh();
  });
  source.addEventListener("project.deleted", (event) => {
    if (JSON.parse(event.data).project_id === projectId) showGone();
  });
  source.addEventListener("resync", () => refresh()); // what was missed cannot be told: ask
  source.addEventListener("account.closed", () => source.close());
}
