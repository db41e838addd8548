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
  // Focus stays where the user is after every swap: what had it (or its nearest element with an id: a
  // planning cell, a unit menu, a radio) is found again in what came in; a dialog's opener gets it back.
  var focusHome = null, openerHome = null, fallback = null; // fallback: where to go if that is gone (data-focus-fallback)
  function home(el) { var h = el && el.closest && el.closest("[id]"); return h ? h.id : null; }
  function focusIn(id) {
    var el = id && document.getElementById(id);
    if (!el || el.matches("dialog")) { return false; }
    var target = el.matches("a[href], button, input, select, textarea, summary") ? el : el.querySelector("summary, button, a[href], input, select");
    if (target) { target.focus(); }
    return !!target;
  }
  document.addEventListener("htmx:beforeRequest", function (e) {
    var active = document.activeElement && document.activeElement !== document.body ? document.activeElement : e.target;
    focusHome = home(active);
    var spare = active.closest && active.closest("[data-focus-fallback]"); fallback = spare ? spare.dataset.focusFallback : null;
    if (!e.target.closest("dialog")) { opener = active; openerHome = focusHome; }
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
  function backToOpener() {
    if (opener && document.contains(opener)) { opener.focus(); return true; }
    return focusIn(openerHome);
  }
  document.addEventListener("htmx:afterSettle", function (e) { // htmx wires new content only then
    document.querySelectorAll("dialog[data-modal]:not([open])").forEach(function (d) { // modal: focus stays inside
      d.addEventListener("close", function () { d.remove(); backToOpener(); });
      d.showModal();
    });
    var lost = !document.activeElement || document.activeElement === document.body;
    if (lost && !document.querySelector("dialog[open]")) { focusIn(focusHome) || focusIn(fallback) || backToOpener(); }
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
  function showTips(e) { // a tooltip hidden with Escape comes back once the pointer or the focus has left its cell
    document.querySelectorAll("[data-tip-hidden]").forEach(function (t) {
      if (!(e.relatedTarget && t.contains(e.relatedTarget))) { t.removeAttribute("data-tip-hidden"); }
    });
  }
  document.addEventListener("focusout", showTips); document.addEventListener("pointerout", showTips);
  document.addEventListener("keydown", function (e) { // Escape hides a cell's tooltip, else closes a legend or unit menu
    if (e.key !== "Escape") { return; }
    var tips = document.querySelectorAll(".cell [data-tip]:hover, .cell [data-tip]:focus-visible");
    if (tips.length) { tips.forEach(function (t) { t.setAttribute("data-tip-hidden", ""); }); return; }
    var open = e.target.closest && e.target.closest("details[open]") || document.querySelector("details.legend[open], details.unit-menu[open]");
    if (open && !open.closest("dialog")) { open.open = false; open.querySelector("summary").focus(); }
  });
})();
