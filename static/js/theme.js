// Sets the colour theme before the page paints (loaded in <head>, not deferred): the stored choice,
// else the system's. A classic script on purpose, so there is no flash of the wrong theme.
(function () {
  "use strict";
  var KEY = "chatsite:theme";
  var media = window.matchMedia("(prefers-color-scheme: dark)");
  function stored() {
    try {
      return window.localStorage.getItem(KEY);
    } catch (e) {
      return null;
    }
  }
  function apply() {
    var choice = stored();
    var theme = choice === "light" || choice === "dark" ? choice : media.matches ? "dark" : "light";
    document.documentElement.setAttribute("data-theme", theme);
  }
  apply();
  media.addEventListener("change", apply);
  window.addEventListener("storage", function (event) {
    if (event.key === KEY) apply();
  });
})();
