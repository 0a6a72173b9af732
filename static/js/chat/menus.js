// Menus (the sidebar rows' "…" and the header's): one open at a time, closed by a click elsewhere or by choosing an
// item, the first item focused on opening. Their arrow keys and Esc are in keyboard.js.

export function openMenus() {
  return document.querySelectorAll("details.item-menu[open]");
}

export function closeMenus(except = null) {
  for (const menu of openMenus()) if (menu !== except) menu.removeAttribute("open");
}

export function menuItems(menu) {
  return [...menu.querySelectorAll('[role="menuitem"]')];
}

// One menu open at a time, so an open menu never covers the next rows' "…" buttons.
document.addEventListener(
  "toggle",
  (event) => {
    const menu = event.target;
    if (!(menu instanceof HTMLDetailsElement) || !menu.classList.contains("item-menu") || !menu.open) return;
    closeMenus(menu);
    // Opened from the keyboard (or clicked): the first item takes the focus, as in any menu.
    if (menu.contains(document.activeElement)) menuItems(menu)[0]?.focus();
  },
  true,
);

// Choosing an item closes its menu (a download link leaves the page where it was).
document.addEventListener("click", (event) => {
  const item = event.target.closest('details.item-menu [role="menuitem"]');
  if (item) item.closest("details").removeAttribute("open");
});

document.addEventListener("pointerdown", (event) => {
  for (const menu of openMenus()) if (!menu.contains(event.target)) menu.removeAttribute("open");
});
