// Mermaid code blocks drawn as diagrams. Mermaid runs in one hidden, sandboxed frame per page (/frames/diagram/,
// its own strict policy), created for the first diagram; the SVG it returns is shown as an <img>, where it can
// run nothing and fetch nothing, and the page's CSP needs no exception for Mermaid's inline styles.

import { strings } from "./util.js";

const FRAME_URL = "/frames/diagram/";
let frame = null;
let ready = null;
let nextId = 0;
const waiting = new Map();

function renderer() {
  if (ready) return ready;
  frame = document.createElement("iframe");
  frame.className = "diagram-renderer";
  frame.setAttribute("sandbox", "allow-scripts");
  frame.setAttribute("aria-hidden", "true");
  frame.tabIndex = -1;
  frame.title = "Diagram renderer";
  ready = new Promise((resolve) => {
    window.addEventListener("message", (event) => {
      if (!frame || event.source !== frame.contentWindow) return;
      const data = event.data || {};
      if (data.ready) {
        resolve();
      } else if (waiting.has(data.id)) {
        waiting.get(data.id)(data);
        waiting.delete(data.id);
      }
    });
  });
  frame.src = FRAME_URL;
  document.body.append(frame);
  return ready;
}

/** Mermaid source -> { svg } or { error }. */
async function draw(source) {
  await renderer();
  nextId += 1;
  const id = nextId;
  const theme = document.documentElement.dataset.theme === "dark" ? "dark" : "default";
  return new Promise((resolve) => {
    waiting.set(id, resolve);
    frame.contentWindow.postMessage({ id, source, theme }, "*");
  });
}

/** Draw the diagram of a Mermaid code block (its toolbar already added); the source stays one click away. */
export async function showDiagram(block) {
  const figure = block.querySelector(".diagram") || document.createElement("figure");
  figure.className = "diagram";
  block.querySelector(".code-head").after(figure);
  const result = await draw(block.querySelector("pre").textContent);
  if (result.error) {
    figure.remove();
    block.classList.remove("shows-diagram");
    const note = document.createElement("p");
    note.className = "diagram-error";
    note.textContent = result.error;
    block.querySelector(".diagram-error")?.remove();
    block.append(note);
    block.querySelector("[data-action=toggle-diagram-source]")?.remove();
    return;
  }
  const image = figure.querySelector("img") || document.createElement("img");
  image.alt = strings.diagram_alt;
  image.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(result.svg)}`;
  figure.replaceChildren(image);
  if (!block.classList.contains("shows-source")) block.classList.add("shows-diagram");
}

// Switching the theme draws the diagrams again in its colours.
new MutationObserver(() => {
  if (!ready) return;
  for (const block of document.querySelectorAll(".code-block.is-diagram")) showDiagram(block);
}).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
