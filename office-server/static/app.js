// The dashboard's only script: no build step, no framework.
// - Live updates: an EventSource on /dashboard/events; on an event in scope the page fetches
//   itself again and swaps the parts marked data-live (never one with a playing recording or a
//   form being filled in).
// - Selection bar: changing a choice submits the form.
// - Confirmation before revoking a tablet.
"use strict";

(function () {
  function busy(element) {
    var audios = element.querySelectorAll("audio");
    for (var i = 0; i < audios.length; i++) {
      if (!audios[i].paused) return true;
    }
    var active = document.activeElement;
    if (active && active !== document.body && element.contains(active) &&
        (active.tagName === "TEXTAREA" || active.tagName === "INPUT")) return true;
    return element.querySelector("[data-dirty]") !== null;
  }

  var refreshing = false;
  var again = false;
  var timer = null;

  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "x-live-refresh": "1" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (text) {
        if (!text) return;
        var fresh = new DOMParser().parseFromString(text, "text/html");
        var parts = document.querySelectorAll("[data-live]");
        for (var i = 0; i < parts.length; i++) {
          var part = parts[i];
          if (!part.id || busy(part)) continue;
          var replacement = fresh.getElementById(part.id);
          if (replacement) part.replaceWith(document.importNode(replacement, true));
        }
        document.dispatchEvent(new CustomEvent("dashboard:refreshed"));
      })
      .catch(function () { /* the next event tries again */ })
      .then(function () {
        refreshing = false;
        if (again) { again = false; schedule(); }
      });
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 150);
  }

  function listen(url) {
    if (!window.EventSource) return;
    var source = new EventSource(url);
    var hint = document.getElementById("live-state");
    var first = true;
    source.addEventListener("hello", function () {
      if (hint) hint.hidden = false;
      // After a reconnect, catch up on whatever was missed.
      if (!first) schedule();
      first = false;
    });
    ["visits", "alert", "decision", "feedback"].forEach(function (name) {
      source.addEventListener(name, schedule);
    });
    source.onerror = function () { if (hint) hint.hidden = true; };
  }

  document.addEventListener("DOMContentLoaded", function () {
    var url = document.body.getAttribute("data-live-events");
    if (url) listen(url);
    document.addEventListener("change", function (event) {
      var target = event.target;
      if (target.matches && target.matches("[data-autosubmit]") && target.form) target.form.submit();
    });
    document.addEventListener("input", function (event) {
      var form = event.target.closest && event.target.closest(".verdict-form");
      if (form) form.setAttribute("data-dirty", "1");
    });
    document.addEventListener("submit", function (event) {
      var message = event.target.getAttribute("data-confirm");
      if (message && !window.confirm(message)) event.preventDefault();
    });
  });
})();
