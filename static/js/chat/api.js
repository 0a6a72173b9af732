// Requests to the REST API and the page's JSON views: JSON in and out, the CSRF header, errors as readable messages.

import { apiBase } from "./page.js";
import { csrfToken, format, strings } from "../util.js";

export async function api(method, path, body) {
  return request(method, apiBase + path, body);
}

export async function request(method, url, body) {
  const response = await fetch(url, {
    method,
    credentials: "same-origin",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/json",
      "X-CSRFToken": csrfToken(),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await apiError(response);
  if (response.status === 204) return null;
  return response.json();
}

export async function apiError(response) {
  let message = strings.send_failed;
  let code = "";
  try {
    const payload = await response.json();
    message = payload?.error?.message || message;
    code = payload?.error?.code || "";
  } catch {
    // Not JSON (a proxy error page): keep the generic message.
  }
  if (response.status === 429 && code === "throttled") {
    // DRF's own wording ("Request was throttled. Expected available in 42 seconds.") is not for people.
    const seconds = Math.ceil(Number(response.headers.get("Retry-After")));
    message = seconds > 0 ? format(strings.throttled_wait, { seconds }) : strings.throttled;
  }
  const error = new Error(message);
  error.status = response.status;
  error.code = code;
  return error;
}

export function fragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html;
  return template.content;
}
