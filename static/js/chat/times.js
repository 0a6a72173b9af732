// Message times: relative ("5 minutes ago"), the exact time on hover, kept current while the page is open.

import { turnsEl } from "./turns.js";

const relativeTime = new Intl.RelativeTimeFormat(document.documentElement.lang || undefined, { numeric: "auto" });
const TIME_STEPS = [["second", 60], ["minute", 60], ["hour", 24], ["day", 7], ["week", 4.35], ["month", 12], ["year", Infinity]];

function relative(date) {
  let amount = (date.getTime() - Date.now()) / 1000;
  for (const [unit, size] of TIME_STEPS) {
    if (Math.abs(amount) < size) return relativeTime.format(Math.round(amount), unit);
    amount /= size;
  }
  return "";
}

export function updateTimes(root = document) {
  for (const time of root.querySelectorAll("time.turn-time")) {
    const date = new Date(time.dateTime);
    const text = Number.isNaN(date.getTime()) ? "" : relative(date);
    // Only when it changed: the observer below sees this write too.
    if (text && time.textContent !== text) time.textContent = text;
  }
}
setInterval(() => updateTimes(), 60_000);
new MutationObserver(() => updateTimes(turnsEl)).observe(turnsEl, { childList: true, subtree: true });
