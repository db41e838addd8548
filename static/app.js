// Ribambelle: the little glue htmx does not do. Everything still works without it.
(function () {
  "use strict";
  // Move focus to the error summary of a form that came back with errors.
  document.addEventListener("DOMContentLoaded", function () {
    var errors = document.getElementById("form-errors");
    if (errors) { errors.focus(); }
  });
  // Announce what an htmx swap changed, in the page's polite live region.
  document.addEventListener("htmx:afterSwap", function (event) {
    var live = document.getElementById("live");
    var said = event.detail.target.querySelector("[data-announce]");
    if (live && said) { live.textContent = said.getAttribute("data-announce"); }
  });
})();
