// Runs in the sandboxed diagram frame (conversations/frames.py), not in the page: draws the Mermaid source the page
// posts and posts back the SVG, sized by its viewBox so that the page can show it as an image.

const BASE = { startOnLoad: false, securityLevel: "strict", htmlLabels: false, flowchart: { htmlLabels: false } };

function sized(svg) {
  const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
  const root = doc.documentElement;
  const box = (root.getAttribute("viewBox") || "").split(/[\s,]+/).map(Number);
  if (box.length === 4 && box[2] > 0 && box[3] > 0) {
    root.setAttribute("width", String(Math.ceil(box[2])));
    root.setAttribute("height", String(Math.ceil(box[3])));
  }
  root.removeAttribute("style");
  return new XMLSerializer().serializeToString(root);
}

window.addEventListener("message", async (event) => {
  if (event.source !== window.parent) return;
  const { id, source, theme } = event.data || {};
  try {
    mermaid.initialize({ ...BASE, theme: theme === "dark" ? "dark" : "default" });
    const { svg } = await mermaid.render(`diagram-${id}`, String(source), document.getElementById("diagrams"));
    window.parent.postMessage({ id, svg: sized(svg) }, "*");
  } catch (error) {
    window.parent.postMessage({ id, error: String(error?.message || error) }, "*");
  }
});

window.parent.postMessage({ ready: true }, "*");
