/* Staff dashboard: live rooms and devices, and the count correction dialog. */
(function () {
  "use strict";
  var F = window.Footfall;
  var t = F.t;

  function applyDevice(d) {
    var state = document.getElementById("device-state-" + d.id);
    if (!state) return;
    state.textContent = t("devices.state." + d.state);
    ["online", "offline", "unknown"].forEach(function (name) {
      state.classList.toggle("state-" + name, name === d.state);
    });
    var seen = document.getElementById("device-seen-" + d.id);
    if (seen && !d.keepSeen) seen.textContent = d.last_seen ? F.formatTime(d.last_seen, true) : t("devices.never");
  }

  function refreshDevices() {
    // A device that stops talking sends nothing: the server marks it offline after 150 s; ask every 30 s.
    fetch("/api/v1/devices", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : []; })
      .then(function (list) { list.forEach(applyDevice); })
      .catch(function () {});
  }

  // Alerts (help calls, offline devices, stalled ingest, low disk...): shown until cleared, with the time elapsed,
  // a sound and a flashing title when a new one opens, so staff notice from across the room.
  var alertsBox = document.getElementById("alerts");
  var alertList = document.getElementById("alert-list");
  var clearAll = document.getElementById("alerts-clear-all");
  var canClear = !!document.querySelector("[data-adjust]");
  var known = null;  // alert ids already shown (null before the first list: no sound for old ones on load)
  var openAlerts = [];
  var baseTitle = document.title;
  var flashing = null;
  var audio = null;

  function csrf() { return document.querySelector('meta[name="csrf-token"]').content; }

  function chime() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      [0, 0.25].forEach(function (delay) {
        var osc = audio.createOscillator();
        var gain = audio.createGain();
        osc.frequency.value = 880;
        gain.gain.value = 0.2;
        osc.connect(gain).connect(audio.destination);
        osc.start(audio.currentTime + delay);
        osc.stop(audio.currentTime + delay + 0.15);
      });
      window.Footfall.chimes = (window.Footfall.chimes || 0) + 1;
    } catch (e) { /* no audio device, or not allowed before a click: the title still flashes */ }
  }

  function flash(on) {
    if (on && !flashing) {
      var odd = false;
      flashing = setInterval(function () {
        odd = !odd;
        document.title = odd ? "\u26a0 " + t("alerts.flash", { n: openAlerts.length }) : baseTitle;
      }, 1000);
    } else if (!on && flashing) {
      clearInterval(flashing);
      flashing = null;
      document.title = baseTitle;
    }
  }

  function elapsed(ts) {
    var s = Math.max(0, Math.floor((Date.now() - new Date(ts).getTime()) / 1000));
    if (s < 60) return t("alerts.elapsed_s", { n: s });
    if (s < 3600) return t("alerts.elapsed_m", { n: Math.floor(s / 60) });
    return t("alerts.elapsed_h", { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
  }

  function describe(a) {
    var room = a.room && F.page.rooms[a.room] ? F.page.rooms[a.room].name : null;
    var where = room || a.device || t("alerts.server");
    var key = "alerts.kind." + a.kind;
    var what = t(key) === key ? (a.message || a.kind) : t(key);
    return t("alerts.line", { what: what, where: where, time: F.formatTime(a.raised_at, false) });
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body || {})
    }).then(function (r) { return r.ok ? r.json() : null; });
  }

  function showAlerts(alerts) {
    openAlerts = alerts;
    var fresh = known !== null && alerts.some(function (a) { return !known[a.id]; });
    known = {};
    alerts.forEach(function (a) { known[a.id] = true; });
    alertList.textContent = "";
    alerts.forEach(function (a) {
      var item = document.createElement("li");
      item.className = "alert-item alert-" + a.kind;
      item.setAttribute("data-alert", a.id);
      var text = document.createElement("span");
      text.className = "alert-text";
      text.textContent = describe(a) + (a.calls > 1 ? " " + t("alerts.calls", { n: a.calls }) : "");
      var since = document.createElement("span");
      since.className = "alert-elapsed";
      since.setAttribute("data-since", a.raised_at);
      since.textContent = elapsed(a.raised_at);
      item.appendChild(text);
      item.appendChild(since);
      if (a.kind !== "help" && a.message) {
        var detail = document.createElement("span");
        detail.className = "alert-detail";
        detail.textContent = a.message;
        item.appendChild(detail);
      }
      if (canClear) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "button alert-clear";
        button.textContent = t("alerts.clear");
        button.addEventListener("click", function () {
          button.disabled = true;
          post("/api/v1/alerts/" + a.id + "/clear")
            .then(function (body) { if (body) showAlerts(body.alerts); else button.disabled = false; })
            .catch(function () { button.disabled = false; });
        });
        item.appendChild(button);
      }
      alertList.appendChild(item);
    });
    alertsBox.hidden = alerts.length === 0;
    if (clearAll) clearAll.hidden = !canClear || alerts.length < 2;
    flash(alerts.length > 0);
    if (fresh) chime();
  }

  if (clearAll) {
    clearAll.addEventListener("click", function () {
      clearAll.disabled = true;
      post("/api/v1/alerts/clear", {})
        .then(function (body) { if (body) showAlerts(body.alerts); })
        .finally(function () { clearAll.disabled = false; });
    });
  }

  setInterval(function () {
    document.querySelectorAll(".alert-elapsed").forEach(function (el) {
      el.textContent = elapsed(el.getAttribute("data-since"));
    });
  }, 1000);

  // When the server itself cannot hear the bus, nobody knows whether a device is up: say "unknown", not
  // "offline" (staff would walk to every door). When it hears again, ask for the real states.
  var wasLive = true;
  document.addEventListener("footfall:live", function (e) {
    if (!e.detail.live) {
      document.querySelectorAll("[data-device]").forEach(function (row) {
        applyDevice({ id: row.getAttribute("data-device"), state: "unknown", last_seen: null, keepSeen: true });
      });
    } else if (!wasLive) {
      refreshDevices();
    }
    wasLive = !!e.detail.live;
  });

  // A counted crossing is a sign of life too (ingest stores last_seen with every event): refresh the device
  // list soon after room changes, at most every 5 s, so a counting door never shows "never seen".
  var refreshSoon = null;
  function deviceActivity() {
    if (refreshSoon === null) refreshSoon = setTimeout(function () { refreshSoon = null; refreshDevices(); }, 5000);
  }

  F.connect(applyDevice, showAlerts, deviceActivity);
  setInterval(refreshDevices, 30000);

  // Rooms stay sorted fullest first (the same order as server.web.dashboard.fullness) as counts change, but a
  // card never moves while staff are acting on the grid: pointer over it, keyboard focus in it, a menu or dialog
  // open.
  var grid = document.getElementById("room-grid");
  var RANK = { full: 0, busy: 1, ok: 2 };
  var configOrder = F.page.roomOrder;

  function levelOf(room) {
    var badge = document.getElementById("level-" + room);
    return badge ? badge.getAttribute("data-level") : "ok";
  }

  function fullnessKey(room) {
    var cap = F.page.rooms[room].capacity;
    var share = cap > 0 ? (F.occupancy[room] || 0) / cap : 0;
    return [RANK[levelOf(room)], -share, configOrder.indexOf(room)];
  }

  function busy() {
    return grid.matches(":hover") || !!grid.querySelector(":focus-visible") ||
      !!document.querySelector('.room-menu:not([hidden])') || !!document.querySelector("dialog[open]");
  }

  var resortWanted = false;
  function resort() {
    if (!grid) return;
    if (busy()) { resortWanted = true; return; }
    resortWanted = false;
    var cards = Array.prototype.slice.call(grid.querySelectorAll(".room-card"));
    var sorted = cards.slice().sort(function (a, b) {
      var ka = fullnessKey(a.getAttribute("data-room"));
      var kb = fullnessKey(b.getAttribute("data-room"));
      for (var i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i] - kb[i];
      return 0;
    });
    if (sorted.every(function (card, i) { return card === cards[i]; })) return;
    sorted.forEach(function (card) { grid.appendChild(card); });
  }
  function resortIfWanted() { if (resortWanted) setTimeout(resort, 0); }
  document.addEventListener("footfall:room", resort);
  if (grid) {
    grid.addEventListener("pointerleave", resortIfWanted);
    grid.addEventListener("focusout", resortIfWanted);
  }
  F.resort = resort;

  // The per-room menu (staff only): one button opens it, a click elsewhere or Escape closes it.
  function closeMenus(except) {
    document.querySelectorAll("[data-menu]").forEach(function (button) {
      var menu = document.getElementById(button.getAttribute("aria-controls"));
      if (menu === except) return;
      if (!menu.hidden) {
        menu.hidden = true;
        button.setAttribute("aria-expanded", "false");
      }
    });
    resortIfWanted();
  }
  document.querySelectorAll("[data-menu]").forEach(function (button) {
    var menu = document.getElementById(button.getAttribute("aria-controls"));
    button.addEventListener("click", function (e) {
      e.stopPropagation();
      closeMenus(menu);
      menu.hidden = !menu.hidden;
      button.setAttribute("aria-expanded", String(!menu.hidden));
      if (!menu.hidden) menu.querySelector("button").focus();
    });
    menu.addEventListener("keydown", function (e) {
      if (e.key === "Escape") { closeMenus(); button.focus(); }
    });
  });
  document.addEventListener("click", function (e) {
    if (!e.target.closest || !e.target.closest(".room-menu")) closeMenus();
  });

  var dialog = document.getElementById("adjust-dialog");
  if (!dialog) return; // not staff
  var form = document.getElementById("adjust-form");
  var number = document.getElementById("adjust-occupancy");
  var reason = document.getElementById("adjust-reason");
  var error = document.getElementById("adjust-error");
  var save = document.getElementById("adjust-save");
  var currentRoom = null;

  function showError(text) {
    error.textContent = text;
    error.hidden = !text;
  }

  document.querySelectorAll("[data-adjust]").forEach(function (button) {
    button.addEventListener("click", function () {
      currentRoom = button.getAttribute("data-adjust");
      closeMenus();
      document.getElementById("adjust-title").textContent =
        t("adjust.title", { room: F.page.rooms[currentRoom].name });
      number.value = F.occupancy[currentRoom] || 0;
      reason.value = "";
      showError("");
      dialog.showModal();
      number.focus();
      number.select();
    });
  });

  document.getElementById("adjust-cancel").addEventListener("click", function () { dialog.close(); });
  dialog.addEventListener("close", function () {
    var opener = document.querySelector('[data-menu="' + currentRoom + '"]');
    if (opener) opener.focus();  // back where the staff member was, not on the hidden menu item
    resortIfWanted();
  });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var value = Number(number.value);
    if (number.value === "" || !Number.isInteger(value) || value < 0) { showError(t("adjust.need_number")); return; }
    if (!reason.value.trim()) { showError(t("adjust.need_reason")); return; }
    save.disabled = true;
    fetch("/api/v1/rooms/" + encodeURIComponent(currentRoom) + "/adjust", {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content
      },
      body: JSON.stringify({ occupancy: value, reason: reason.value.trim() })
    })
      .then(function (r) {
        return r.json().then(function (body) { return { ok: r.ok, body: body }; });
      })
      .then(function (res) {
        if (!res.ok) { showError(t("adjust.error", { detail: res.body.detail || res.body.error })); return; }
        F.applyRoom(res.body);
        dialog.close();
      })
      .catch(function (err) { showError(t("adjust.error", { detail: String(err) })); })
      .finally(function () { save.disabled = false; });
  });
})();
