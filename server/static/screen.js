/* Lobby big screen: live numbers, a clock and today's sessions; nothing to touch. */
(function () {
  "use strict";
  var F = window.Footfall;
  var t = F.t;
  var clock = document.getElementById("clock");

  function tick() {
    if (clock) clock.textContent = F.formatTime(new Date().toISOString(), false);
  }

  // A session in a room that fills up (or empties) says so at once: the room states come over the live stream.
  function markSessions(room, level) {
    document.querySelectorAll('.session[data-room="' + room + '"]').forEach(function (row) {
      var places = row.querySelector(".session-places");
      var left = parseInt(row.getAttribute("data-places"), 10) || 0;
      var full = level === "full" ? "room" : (left === 0 ? "places" : "");
      places.setAttribute("data-full", full);
      places.textContent = full === "room" ? t("screen.room_full")
        : (full === "places" ? t("screen.no_places") : t("screen.places_left", { n: left }));
      row.classList.toggle("is-full", full !== "");
    });
  }
  document.addEventListener("footfall:room", function (e) { markSessions(e.detail.room, e.detail.level); });

  // Places left change with kiosk check-ins and sessions start and end: take the server's list again every minute.
  function refreshSessions() {
    fetch(window.location.href, { credentials: "same-origin" })  // the address carries the TV's token
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("sessions");
        var list = document.getElementById("sessions");
        if (fresh && list) list.innerHTML = fresh.innerHTML;
      })
      .catch(function () {});
  }

  tick();
  setInterval(tick, 10000);
  setInterval(refreshSessions, 60000);
  F.refreshSessions = refreshSessions;
  F.connect(null);
})();
