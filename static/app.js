// Ribambelle: the little glue htmx does not do. Every page still works without it.
(function () { "use strict";
  document.documentElement.classList.add("js"); // the CSS may hide what only a page without JavaScript needs
  var opener = null, warning = document.getElementById("session-warning"), timer = null;
  document.addEventListener("ribambelle:close-dialog", function () {
    document.querySelectorAll("dialog[data-modal]").forEach(function (d) { d.close(); }); });
  // RGAA 13.1: two minutes before an idle session ends, offer to extend it; any request restarts the clock.
  function arm() {
    clearTimeout(timer); if (!warning) { return; } if (warning.open) { warning.close(); }
    timer = setTimeout(function () { warning.showModal(); }, (warning.dataset.idleSeconds - 120) * 1000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var errors = document.getElementById("form-errors"), bank = document.querySelector("form[data-autosubmit]");
    if (errors) { errors.focus(); } if (bank) { bank.submit(); } // to the bank at once; a button for JS off
  });
  var cellId = null; // the planning cell clicked: its redrawn self gets the focus back (else it falls to the body)
  document.addEventListener("htmx:beforeRequest", function (e) {
    if (!e.target.closest("dialog")) { opener = e.target; }
    var cell = e.target.closest && e.target.closest("td.cell"); cellId = cell ? cell.id : null;
  });
  document.addEventListener("htmx:afterRequest", arm); arm();
  // A click that the server could not answer (5xx) or that never reached it: say so where the user is.
  function failed(words) {
    var live = document.getElementById("planning-live") || document.getElementById("live");
    if (live) { live.textContent = ""; setTimeout(function () { live.textContent = words; }, 50); }
  }
  document.addEventListener("htmx:responseError", function () { failed("Le serveur n'a pas pu enregistrer ce choix. " +
    "Réessayez dans un instant ; vos réservations confirmées restent enregistrées."); });
  document.addEventListener("htmx:sendError", function () { failed("Pas de connexion au serveur : ce choix n'est pas " +
    "enregistré. Vérifiez votre connexion internet et réessayez."); });
  document.addEventListener("htmx:afterSettle", function (e) { // htmx wires new content only then
    document.querySelectorAll("dialog[data-modal]:not([open])").forEach(function (d) { // modal: focus stays inside
      d.addEventListener("close", function () { d.remove(); if (opener && document.contains(opener)) { opener.focus(); } });
      d.showModal();
    });
    var again = cellId && document.getElementById(cellId);
    if (again && again.firstElementChild) { again.firstElementChild.focus(); cellId = null; return; }
    var root = e.detail.target && (document.getElementById(e.detail.target.id) || e.detail.target);
    var steps = root && root.querySelectorAll ? root.querySelectorAll("[data-focus]") : [];
    if (steps.length) { steps[steps.length - 1].focus(); } // then the newest step of what came in
  });
  document.addEventListener("click", function (e) {
    var closer = e.target.closest("[data-close-dialog]");
    if (closer && closer.closest("dialog")) { e.preventDefault(); closer.closest("dialog").close(); }
  });
  document.addEventListener("submit", function (e) { // a confirmation posts once, however often it is pressed
    if (e.target.matches("form[data-once]")) { if (e.target.dataset.sent) { e.preventDefault(); } e.target.dataset.sent = "1"; }
  });
  ["pointerover", "pointerout"].forEach(function (type) { // legends open on hover too, as the guide says,
    document.addEventListener(type, function (e) {               // with a mouse only: a tap is a click
      var legend = e.pointerType === "mouse" && e.target.closest && e.target.closest("details[data-hover-open]");
      if (legend && (type === "pointerover" || !legend.contains(e.relatedTarget))) { legend.open = type === "pointerover"; }
    });
  });
  document.addEventListener("keydown", function (e) { // Escape closes an open legend or unit menu, focus on its button
    if (e.key !== "Escape") { return; }
    var open = e.target.closest && e.target.closest("details[open]") || document.querySelector("details.legend[open], details.unit-menu[open]");
    if (open && !open.closest("dialog")) { open.open = false; open.querySelector("summary").focus(); }
  });
})();
