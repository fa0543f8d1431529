// Pulseboard's only script: relative times, and pacing the htmx polls.
(function () {
  "use strict";

  // Polls run every few seconds while the tab is visible and every tenth tick
  // (about 30 s) while it is hidden; showing the tab again polls at once.
  var ticks = 0;
  window.pulse = {
    due: function () {
      ticks += 1;
      return !document.hidden || ticks % 10 === 0;
    },
  };

  // The pacing is decided here, not in an hx-trigger filter: htmx compiles
  // filters with Function(), which the Content-Security-Policy (no
  // 'unsafe-eval') refuses. A poll's tick comes with no triggering event;
  // an event trigger (pulse:wake, device-changed) always goes through.
  document.addEventListener("htmx:confirm", function (event) {
    var paced = event.detail.elt.hasAttribute("data-paced");
    if (paced && !event.detail.triggeringEvent && !window.pulse.due()) {
      event.preventDefault();
    }
  });

  function relative(seconds) {
    if (seconds < 5) return "just now";
    if (seconds < 60) return Math.floor(seconds) + " s ago";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h ago";
    return Math.floor(seconds / 86400) + " d ago";
  }

  // The server renders the exact UTC time; this turns it into "12 s ago" and
  // keeps it ticking, so the server never resends a row just because time passed.
  // A connected device's heartbeat is refreshed only when something visible
  // changes, so its age is shown as "within I+G" once it passes that bound.
  function renderTimes(root) {
    var now = Date.now();
    (root || document).querySelectorAll("time.ago").forEach(function (el) {
      var seconds = Math.max(0, (now - Date.parse(el.getAttribute("datetime"))) / 1000);
      var cap = Number(el.dataset.cap || 0);
      var text = cap && seconds > cap ? "within " + cap + " s" : relative(seconds);
      if (el.textContent !== text) el.textContent = text;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    renderTimes();
    setInterval(renderTimes, 1000);
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    renderTimes(event.detail.elt.parentNode || document);
  });
  document.addEventListener("htmx:oobAfterSwap", function () {
    renderTimes();
  });

  // The poll tells the server which devices are on screen, so it answers only those.
  document.addEventListener("htmx:configRequest", function (event) {
    if (event.detail.elt.id !== "poller") return;
    var ids = [];
    document.querySelectorAll("#grid tr[data-id]").forEach(function (row) {
      ids.push(row.dataset.id);
    });
    event.detail.parameters.shown = ids.join(",");
  });

  // htmx swaps nothing on an error answer, so a refused click would look like
  // nothing happened; say so at the top of the page instead. Polls stay quiet.
  document.addEventListener("htmx:responseError", function (event) {
    if (event.detail.elt.id === "poller") return;
    var status = event.detail.xhr.status;
    var text = status === 403 ? "You are not allowed to do that."
      : status === 429 ? "Too many requests; try again in a moment."
      : "That did not work (HTTP " + status + "); reload the page and try again.";
    var note = document.getElementById("action-error");
    if (!note) {
      note = document.createElement("p");
      note.id = "action-error";
      note.className = "flash flash-error";
      note.setAttribute("role", "alert");
      document.querySelector("main").prepend(note);
    }
    note.textContent = text;
  });

  // The tab title carries the problem count, so a support desk sees it from another tab.
  function updateTitle() {
    var counters = document.getElementById("counters");
    if (!counters || counters.dataset.attention === undefined) return;
    var count = Number(counters.dataset.attention);
    var base = document.title.replace(/^\d+ need attention · /, "");
    document.title = count ? count + " need attention · " + base : base;
  }

  // A poll redraws a row by swapping it whole, which would drop the keyboard's
  // focus to <body>; the focused control is found again in the new row.
  var focused = null;
  document.addEventListener("htmx:beforeSwap", function () {
    var active = document.activeElement;
    var row = active && active.closest ? active.closest("tr[data-id]") : null;
    if (!row) { focused = null; return; }
    var controls = Array.prototype.slice.call(row.querySelectorAll("a, button, input, select"));
    focused = { row: row.id, index: controls.indexOf(active) };
  });
  function restoreFocus() {
    if (!focused || (document.activeElement && document.activeElement !== document.body)) return;
    var row = document.getElementById(focused.row);
    var controls = row ? row.querySelectorAll("a, button, input, select") : [];
    var target = controls[focused.index];
    // A Reconnect button is disabled once its request is pending: the row's link takes the focus.
    if (!target || target.disabled) target = controls[0];
    if (target && target.focus) target.focus({ preventScroll: true });
  }

  // Status changes are announced politely in words: "kiosk-9 disconnected".
  var statuses = {};
  function announceChanges() {
    var news = [];
    document.querySelectorAll("#grid tr[data-id]").forEach(function (row) {
      var before = statuses[row.dataset.id];
      if (before && before !== row.dataset.status) {
        news.push(row.dataset.uid + " " + row.dataset.status.toLowerCase());
      }
      statuses[row.dataset.id] = row.dataset.status;
    });
    var announcer = document.getElementById("announcer");
    if (announcer && news.length) announcer.textContent = news.join(", ");
  }

  document.addEventListener("DOMContentLoaded", function () {
    announceChanges();
    updateTitle();
  });
  document.addEventListener("htmx:afterSwap", function () {
    restoreFocus();
  });
  document.addEventListener("htmx:afterSettle", function () {
    restoreFocus();
    announceChanges();
    updateTitle();
  });

  // A poll's rows and the page can overlap by an entry committed while the
  // page was drawn (fleet/services/event_log.py); the older copy goes.
  document.addEventListener("htmx:afterSettle", function () {
    var seen = {};
    document.querySelectorAll("#event-rows tr[id]").forEach(function (row) {
      if (seen[row.id]) row.remove();
      seen[row.id] = true;
    });
  });

  document.addEventListener("visibilitychange", function () {
    if (document.hidden || !window.htmx) return;
    var poller = document.getElementById("poller");
    if (poller) window.htmx.trigger(poller, "pulse:wake");
  });
})();
