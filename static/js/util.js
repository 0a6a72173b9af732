// Small helpers shared by the page scripts (imported by app.js and chat.js; no global state beyond these).

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = document.createElement("textarea");
    area.value = text;
    area.className = "offscreen";
    document.body.append(area);
    area.select();
    const copied = document.execCommand("copy");
    area.remove();
    return copied;
  }
}

export function flashLabel(button, label) {
  // Icon buttons keep their icon and only change colour; text buttons show the label for a moment.
  const before = button.textContent;
  const hasIcon = Boolean(button.querySelector("svg"));
  if (!hasIcon) button.textContent = label;
  button.classList.add("flashed");
  setTimeout(() => {
    if (!hasIcon) button.textContent = before;
    button.classList.remove("flashed");
  }, 1200);
}

export const strings = JSON.parse(document.getElementById("js-strings")?.textContent || "{}");


export function csrfToken() {
  const field = document.querySelector("input[name=csrfmiddlewaretoken]");
  if (field) return field.value;
  const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

/** Fill "%(name)s" placeholders of a translated string (Django's named interpolation). */
export function format(template, values) {
  return template.replace(/%\((\w+)\)s/g, (match, name) => (name in values ? String(values[name]) : match));
}
