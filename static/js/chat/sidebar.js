// The sidebar as a drawer at phone width: opened and closed, and out of the Tab order while closed.

const sidebar = document.getElementById("sidebar");
export const narrowScreen = window.matchMedia("(max-width: 768px)");

export function setSidebarOpen(open) {
  document.body.classList.toggle("sidebar-open", open);
  document.querySelector(".sidebar-toggle").setAttribute("aria-expanded", String(open));
  updateSidebarInert();
  if (open) sidebar.querySelector(".sidebar-close").focus();
  else if (narrowScreen.matches) document.querySelector(".sidebar-toggle").focus();
}

export function updateSidebarInert() {
  // At phone width a closed sidebar is off-screen: out of the Tab order and of the accessibility tree too.
  sidebar.inert = narrowScreen.matches && !document.body.classList.contains("sidebar-open");
}
narrowScreen.addEventListener("change", updateSidebarInert);
