// The page's small question dialog (rename, confirm a deletion, name a folder).

export const dialog = document.getElementById("dialog");

export function ask({ message, value = null, okLabel, danger = false }) {
  document.getElementById("dialog-message").textContent = message;
  const field = document.getElementById("dialog-input");
  const ok = document.getElementById("dialog-ok");
  field.classList.toggle("is-hidden", value === null);
  field.value = value ?? "";
  ok.textContent = okLabel;
  ok.classList.toggle("btn-danger", danger);
  ok.classList.toggle("btn-primary", !danger);
  dialog.returnValue = "";
  dialog.showModal();
  if (value !== null) field.select();
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => resolve(dialog.returnValue === "ok" ? field.value : null),
      { once: true },
    );
  });
}

// Enter in the rename field saves (the form's default button would be Cancel, the first one).
document.getElementById("dialog-input").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.isComposing) {
    event.preventDefault();
    dialog.close("ok");
  }
});
