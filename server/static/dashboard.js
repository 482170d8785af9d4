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
    if (seen) seen.textContent = d.last_seen ? F.formatTime(d.last_seen, true) : t("devices.never");
  }

  function refreshDevices() {
    // A device that stops talking sends nothing: the server marks it offline after 150 s; ask every 30 s.
    fetch("/api/v1/devices", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : []; })
      .then(function (list) { list.forEach(applyDevice); })
      .catch(function () {});
  }

  // Help requests from kiosks: shown until a staff member clears them.
  var alertsBox = document.getElementById("alerts");
  var alertList = document.getElementById("alert-list");
  var canClear = !!document.querySelector("[data-adjust]");
  function showAlerts(alerts) {
    alertList.textContent = "";
    alerts.forEach(function (a) {
      var item = document.createElement("li");
      item.className = "alert-item";
      var text = document.createElement("span");
      var room = a.room && F.page.rooms[a.room] ? F.page.rooms[a.room].name : a.device;
      text.textContent = t("alerts.item", { room: room, time: F.formatTime(a.raised_at, false) });
      item.appendChild(text);
      if (canClear) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "button alert-clear";
        button.textContent = t("alerts.clear");
        button.addEventListener("click", function () {
          button.disabled = true;
          fetch("/api/v1/alerts/" + a.id + "/clear", {
            method: "POST",
            credentials: "same-origin",
            headers: { "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content }
          }).then(function (r) { return r.ok ? r.json() : null; })
            .then(function (body) { if (body) showAlerts(body.alerts); else button.disabled = false; })
            .catch(function () { button.disabled = false; });
        });
        item.appendChild(button);
      }
      alertList.appendChild(item);
    });
    alertsBox.hidden = alerts.length === 0;
  }

  // A counted crossing is a sign of life too (ingest stores last_seen with every event): refresh the device
  // list soon after room changes, at most every 5 s, so a counting door never shows "never seen".
  var refreshSoon = null;
  function deviceActivity() {
    if (refreshSoon === null) refreshSoon = setTimeout(function () { refreshSoon = null; refreshDevices(); }, 5000);
  }

  F.connect(applyDevice, showAlerts, deviceActivity);
  setInterval(refreshDevices, 30000);

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
