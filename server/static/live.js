/* Footfall live pages: shared helpers (catalog, room cards, the SSE connection). No framework, no CDN. */
(function () {
  "use strict";

  var catalog = JSON.parse(document.getElementById("i18n-catalog").textContent);
  var page = JSON.parse(document.getElementById("page-data").textContent);
  var occupancy = {};
  var entries = {};

  function t(key, values) {
    var text = Object.prototype.hasOwnProperty.call(catalog, key) ? catalog[key] : key;
    if (values) {
      Object.keys(values).forEach(function (name) {
        text = text.split("{" + name + "}").join(String(values[name]));
      });
    }
    return text;
  }

  function withToken(url) {
    if (!page.token) return url;
    return url + (url.indexOf("?") >= 0 ? "&" : "?") + "token=" + encodeURIComponent(page.token);
  }

  function setText(id, value) {
    var el = document.getElementById(id);
    if (!el) return false;
    var text = String(value);
    if (el.textContent === text) return false;
    el.textContent = text;
    el.classList.remove("changed");
    void el.offsetWidth; // restart the highlight animation
    el.classList.add("changed");
    return true;
  }

  function setLevelClass(el, level) {
    if (!el) return;
    ["ok", "busy", "full"].forEach(function (name) {
      el.classList.toggle("level-" + name, name === level);
    });
  }

  function setFill(room, occ, cap) {
    var fill = document.querySelector('[data-fill="' + room + '"]');
    if (fill) fill.style.width = (cap > 0 ? Math.min(100, (100 * occ) / cap) : 0) + "%";
  }

  function totals() {
    var inBuilding = 0;
    var inUse = 0;
    Object.keys(occupancy).forEach(function (room) {
      inBuilding += occupancy[room];
      if (occupancy[room] > 0) inUse += 1;
    });
    setText("in-building", inBuilding);
    setText("rooms-in-use", inUse);
  }

  function applyRoom(state) {
    var room = state.room;
    if (!page.rooms[room]) return;
    var entriesChanged = entries[room] !== state.entries_today;
    occupancy[room] = state.occupancy;
    entries[room] = state.entries_today;
    setText("occupancy-" + room, state.occupancy);
    setText("entries-" + room, state.entries_today);
    var badge = document.getElementById("level-" + room);
    if (badge) {
      badge.textContent = t("level." + state.level);
      badge.setAttribute("data-level", state.level);
    }
    var card = document.getElementById("room-" + room);
    setLevelClass(card, state.level);
    // Over capacity is more than "full": say by how many, in words and not by colour alone.
    var over = state.capacity > 0 ? Math.max(0, state.occupancy - state.capacity) : 0;
    var flag = document.getElementById("over-" + room);
    if (flag) {
      flag.hidden = over === 0;
      flag.textContent = t("room.over", { n: over });
    }
    if (card) card.classList.toggle("over", over > 0);
    setFill(room, state.occupancy, state.capacity);
    totals();
    document.dispatchEvent(new CustomEvent("footfall:room", { detail: state }));
    if (entriesChanged && page.entranceRooms.indexOf(room) >= 0) refreshVisits();
  }

  var visitsTimer = null;
  function refreshVisits() {
    // Visits come from the entrance doors' crossings, which room states do not carry: ask, at most every 2 s.
    if (visitsTimer) return;
    visitsTimer = setTimeout(function () {
      visitsTimer = null;
      fetch(withToken("/api/v1/daily"), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) { if (body) setText("visits-today", body.visits); })
        .catch(function () {});
    }, 2000);
  }

  function formatTime(ts, withSeconds) {
    if (!ts) return "";
    var options = { timeZone: page.timezone, hour: "2-digit", minute: "2-digit", hour12: false };
    if (withSeconds) options.second = "2-digit";
    return new Intl.DateTimeFormat(page.lang, options).format(new Date(ts));
  }

  function setStatus(state) {
    var el = document.getElementById("live-status");
    if (!el) return;
    el.setAttribute("data-state", state);
    el.textContent = t("live." + state);
  }

  // When data last arrived (any room or device message the server passed on, or its own last_data).
  var lastData = null;
  function dataArrived(ts) {
    if (!ts) return;
    if (lastData && ts <= lastData) return;
    lastData = ts;
    var el = document.getElementById("last-data");
    if (el) el.textContent = t("live.last_data", { time: formatTime(ts, true) });
  }

  // The server's own view of the bus (`live` events): a stream that is open proves nothing when the server
  // itself has lost the broker or ingest. Pages listen for "footfall:live" (devices turn "unknown").
  function applyLive(status) {
    setStatus(status.live ? "connected" : (status.broker ? "no_ingest" : "no_broker"));
    dataArrived(status.last_data);
    document.dispatchEvent(new CustomEvent("footfall:live", { detail: status }));
  }

  // A frozen server (or a half-dead link) keeps the stream open and silent: EventSource reports no error. The
  // server sends a `ping` every `every_s` seconds; after two missed pings the page stops claiming to be live.
  var pingEvery = 15;
  function silenceLimitMs() { return (2 * Math.max(pingEvery, 1) + 5) * 1000; }

  function connect(onDevice, onAlerts, onRoomChange) {
    var source = new EventSource(withToken("/api/v1/stream"));
    var heardAt = Date.now();
    var silent = false;
    function heard() { heardAt = Date.now(); silent = false; }
    ["room", "device", "alerts", "live", "ping"].forEach(function (kind) { source.addEventListener(kind, heard); });
    source.addEventListener("ping", function (e) { pingEvery = JSON.parse(e.data).every_s; });
    var watchdog = setInterval(function () {
      if (silent || Date.now() - heardAt < silenceLimitMs()) return;
      silent = true;
      setStatus("disconnected");
      document.dispatchEvent(new CustomEvent("footfall:live", { detail: { live: false, stream: false } }));
      clearInterval(watchdog);
      source.close();
      connect(onDevice, onAlerts, onRoomChange);
    }, 1000);
    source.addEventListener("alerts", function (e) { if (onAlerts) onAlerts(JSON.parse(e.data).alerts); });
    // The stream starts with a snapshot (rooms, devices, alerts, then `live`); only what comes after it is news.
    var streaming = false;
    source.addEventListener("live", function (e) { streaming = true; applyLive(JSON.parse(e.data)); });
    source.addEventListener("room", function (e) {
      if (streaming) dataArrived(new Date().toISOString());
      applyRoom(JSON.parse(e.data));
      if (onRoomChange) onRoomChange();
    });
    source.addEventListener("device", function (e) {
      var device = JSON.parse(e.data);
      dataArrived(streaming ? new Date().toISOString() : device.last_seen);
      if (onDevice) onDevice(device);
    });
    source.addEventListener("error", function () {
      setStatus("disconnected");
      streaming = false;
      document.dispatchEvent(new CustomEvent("footfall:live", { detail: { live: false, stream: false } }));
      if (source.readyState === EventSource.CLOSED) {
        clearInterval(watchdog);
        // The server refused the stream (session expired?): check, then log in again or retry.
        fetch(withToken("/api/v1/rooms"), { credentials: "same-origin" })
          .then(function (r) {
            if (r.status === 401) window.location.reload();
            else setTimeout(function () { connect(onDevice, onAlerts, onRoomChange); }, 5000);
          })
          .catch(function () { setTimeout(function () { connect(onDevice, onAlerts, onRoomChange); }, 5000); });
      }
    });
    return source;
  }

  // Start from what the server rendered.
  document.querySelectorAll("[data-room]").forEach(function (el) {
    var room = el.getAttribute("data-room");
    var occ = document.getElementById("occupancy-" + room);
    var ent = document.getElementById("entries-" + room);
    if (occ) occupancy[room] = parseInt(occ.textContent, 10) || 0;
    if (ent) entries[room] = parseInt(ent.textContent, 10) || 0;
    if (page.rooms[room]) setFill(room, occupancy[room] || 0, page.rooms[room].capacity);
  });

  window.Footfall = {
    t: t, page: page, withToken: withToken, setText: setText, applyRoom: applyRoom,
    connect: connect, formatTime: formatTime, occupancy: occupancy
  };
})();
