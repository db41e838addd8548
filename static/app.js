// Ribambelle: the little glue htmx does not do. Every page still works without it.
(function () {
  "use strict";
  var opener = null;
  function closeDialogs() { document.querySelectorAll("dialog[data-modal]").forEach(function (d) { d.close(); }); }
  document.addEventListener("DOMContentLoaded", function () {
    var errors = document.getElementById("form-errors"), bank = document.querySelector("form[data-autosubmit]");
    if (errors) { errors.focus(); }
    if (bank) { bank.submit(); } // to the bank's page at once; the button stays for JavaScript off
  });
  document.addEventListener("htmx:beforeRequest", function (e) { if (!e.target.closest("dialog")) { opener = e.target; } });
  document.addEventListener("htmx:afterSwap", function (e) {
    // A dialog fragment appended to the page opens as a modal: focus stays inside until it closes.
    document.querySelectorAll("dialog[data-modal]:not([open])").forEach(function (d) {
      d.addEventListener("close", function () { d.remove(); if (opener && document.contains(opener)) { opener.focus(); } });
      d.showModal();
    });
    var target = e.detail.target, focus = target && target.querySelector && target.querySelector("[data-focus]");
    if (focus) { focus.focus(); }
  });
  document.addEventListener("ribambelle:close-dialog", closeDialogs);
  document.addEventListener("click", function (e) {
    var closer = e.target.closest("[data-close-dialog]");
    if (closer && closer.closest("dialog")) { e.preventDefault(); closer.closest("dialog").close(); }
  });
  document.addEventListener("submit", function (e) {
    // A confirmation posts once, however many times the button is pressed.
    if (e.target.matches("form[data-once]")) {
      if (e.target.dataset.sent) { e.preventDefault(); } e.target.dataset.sent = "1"; }
  });
  document.addEventListener("mouseover", function (e) {
    var legend = e.target.closest && e.target.closest("details[data-hover-open]");
    if (legend && !legend.open) { legend.open = true; legend.dataset.hovered = "1"; }
  });
  document.addEventListener("mouseout", function (e) {
    var legend = e.target.closest && e.target.closest("details[data-hover-open]");
    if (legend && legend.dataset.hovered && !legend.contains(e.relatedTarget)) { legend.open = false; delete legend.dataset.hovered; }
  });
})();
