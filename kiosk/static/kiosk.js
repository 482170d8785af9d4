/* Footfall kiosk UI: one page, screens shown one at a time. Single taps only; any tap restarts the idle timer. */
(function () {
  "use strict";
  const K = JSON.parse(document.getElementById("kiosk-config").textContent);
  const CATALOGS = JSON.parse(document.getElementById("kiosk-i18n").textContent);
  const HOLD_MS = 2000;  // staff mode: press and hold the centre's name this long
  const $ = (id) => document.getElementById(id);
  let lang = K.language;
  let defaultLang = K.language;
  let soundOn = K.sound;
  let screen = "welcome";
  let visit = null;
  let state = { items: [], rooms: [] };
  let page = 0;
  let pageStarts = [0];  // activity pages hold what fits on the screen, so nothing is cut
  let holdTimer = null;
  let entry = { member: "", pin: "" };
  let staffToken = null;
  let busy = false;
  let lastTouch = performance.now();
  let successTimer = null;
  let scanTimer = null;
  let audio = null;
  window.kiosk = { screen: () => screen, marks: {} };

  function t(key, vars) {
    let text = (CATALOGS[lang] && CATALOGS[lang][key]) || CATALOGS["zh-CN"][key] || key;
    Object.entries(vars || {}).forEach(([k, v]) => { text = text.split("{" + k + "}").join(String(v)); });
    return text;
  }

  // Plural forms come from the catalog: "adults_one" / "adults_other" (Chinese has only "other").
  function plural(key, n) {
    const form = new Intl.PluralRules(lang).select(n);
    const forms = CATALOGS[lang] || {};
    return t(forms[key + "_" + form] ? key + "_" + form : key + "_other", { n: n });
  }

  const ZH_DIGITS = "零一二三四五六七八九";
  function zhNumber(n) {  // 1..99 as Chinese numerals: 2 -> 二, 12 -> 十二, 21 -> 二十一
    if (n < 10) return ZH_DIGITS[n];
    const tens = Math.floor(n / 10), ones = n % 10;
    return (tens > 1 ? ZH_DIGITS[tens] : "") + "十" + (ones ? ZH_DIGITS[ones] : "");
  }
  function floorName(floor) {
    if (!floor) return "";
    const n = Math.abs(floor);
    return t(floor > 0 ? "floor_up" : "floor_down", { n: lang === "zh-CN" ? zhNumber(n) : n });
  }
  // Where an item is, for a visitor: "二楼电教室" / "E-learning room, floor 2"; "" when the room is not known.
  function place(item) {
    const room = lang === "en" ? (item.room_name_en || item.room_name) : item.room_name;
    if (!room) return "";
    return item.floor ? t("place_floor", { floor: floorName(item.floor), room: room }) : room;
  }
  function overflows(el) { return el.scrollHeight > el.clientHeight + 8 || el.scrollWidth > el.clientWidth + 1; }

  function beep() {
    if (!soundOn) return;
    try {
      audio = audio || new AudioContext();
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.value = 0.15;
      osc.connect(gain).connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.08);
    } catch (e) { /* no audio device: stay silent */ }
  }

  let csrf = K.csrf;  // sent with every POST; after a kiosk restart the old one is refused: fetch it again
  async function api(path, body, headers, retried) {
    const opts = body === undefined ? {} : {
      method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, ...(headers || {}) },
      body: JSON.stringify(body),
    };
    if (body === undefined && headers) opts.headers = headers;
    const resp = await fetch(path, opts);
    let data = {};
    try { data = await resp.json(); } catch (e) { /* empty */ }
    if (resp.status === 403 && data.error === "csrf" && !retried) {
      const fresh = await fetch("/api/csrf");
      if (fresh.ok) { csrf = (await fresh.json()).token; return api(path, body, headers, true); }
    }
    return { ok: resp.ok, status: resp.status, data: data };
  }

  function showError(data) {
    // A full outbox cannot take the check-in now: send the visitor to the desk rather than "try again".
    const hint = document.querySelector("#overlay-error p");
    hint.dataset.i18n = data && data.error === "outbox_full" ? "error_full" : "error_hint";
    hint.textContent = t(hint.dataset.i18n);
    $("overlay-error").classList.add("open");
  }

  // --- rendering --------------------------------------------------------------------------------
  function name(item, zhKey, enKey) { return lang === "en" ? (item[enKey] || item[zhKey]) : item[zhKey]; }
  function badge(level) {
    if (level !== "busy" && level !== "full") return null;
    const b = document.createElement("span");
    b.className = "badge " + level;
    b.textContent = t("level_" + level);
    return b;
  }
  function li(text, level, where) {
    const el = document.createElement("li");
    el.textContent = text + " ";
    if (where) {
      const w = document.createElement("span");
      w.className = "where";
      w.textContent = where + " ";
      el.appendChild(w);
    }
    const b = badge(level);
    if (b) (el.lastElementChild || el).appendChild(b);  // next to the room when there is one
    return el;
  }

  function renderWelcome() {
    $("center-name").textContent = K.center[lang] || K.center["zh-CN"];
    const today = $("today-list");
    today.replaceChildren();
    state.items.slice(0, 3).forEach((i) => today.appendChild(li(i.start + " " + name(i, "title", "title_en"), i.level, place(i))));
    if (!state.items.length) today.appendChild(li(t("no_activities")));
    const rooms = $("room-list");
    rooms.replaceChildren();
    const fullFirst = state.rooms.slice().sort((a, b) => (b.level === "full") - (a.level === "full"));
    fullFirst.slice(0, 3).forEach((r) => rooms.appendChild(li(name(r, "name", "name_en"), r.level)));
    if (!state.rooms.length) rooms.appendChild(li(t("rooms_all_free")));
    if (screen !== "welcome") return;
    // Show what fits, whole, never a cut line: drop later activities (down to two), then the rooms least full.
    const side = document.querySelector(".welcome-side");
    while (overflows(side) && (rooms.children.length > 1 || today.children.length > 1)) {
      const list = today.children.length > 2 || rooms.children.length === 1 ? today : rooms;
      list.lastElementChild.remove();
    }
  }

  function choices() { return visit ? state.items.filter((i) => i.kind === visit.purpose) : []; }

  function renderActivities() {
    const list = choices();
    $("activity-title").textContent = t("activity_title_" + (visit ? visit.purpose : "activity"));
    const box = $("activity-list");
    box.replaceChildren();
    const start = pageStarts[page] || 0;
    let shown = 0;
    for (const i of list.slice(start)) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "btn choice";
      b.dataset.activity = i.id;
      const title = document.createElement("span");
      title.className = "choice-title";
      title.textContent = i.start + "–" + i.end + "  " + name(i, "title", "title_en");
      const where = document.createElement("span");
      where.className = "choice-where";
      where.textContent = place(i) + " ";
      const mark = badge(i.level);
      if (mark) where.appendChild(mark);
      b.append(title, where);
      box.appendChild(b);
      if (shown > 0 && overflows(box)) { b.remove(); break; }  // the rest go on the next page
      shown += 1;
    }
    pageStarts[page + 1] = start + shown;
    $("btn-page-prev").classList.toggle("hidden", page === 0);
    $("btn-page-next").classList.toggle("hidden", start + shown >= list.length);
  }

  function renderCounts() {
    $("count-adults").textContent = visit.adults;
    $("count-children").textContent = visit.children;
  }

  function renderKeypadDisplays() {
    $("member-display").textContent = entry.member;
    $("pin-display").textContent = "●".repeat(entry.pin.length);
  }

  function applyLanguage() {
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    document.querySelectorAll("[data-i18n-aria]").forEach((el) => el.setAttribute("aria-label", t(el.dataset.i18nAria)));
    $("btn-sound").textContent = t(soundOn ? "sound_on" : "sound_off");
    $("notice-who").textContent = t("notice_who", { center: K.center[lang] || K.center["zh-CN"] });
    $("notice-how-long").textContent = t("notice_how_long", { days: K.retention_days });
    renderWelcome();
    if (visit && screen === "activity") { page = 0; pageStarts = [0]; renderActivities(); }
  }

  function show(name) {
    document.querySelectorAll(".screen").forEach((s) => s.classList.toggle("active", s.id === "screen-" + name));
    screen = name;
    document.body.dataset.screen = name;
    if (name !== "scan") stopScan();
    if (name === "welcome") renderWelcome();
  }

  function closeOverlays() { document.querySelectorAll(".overlay").forEach((o) => o.classList.remove("open")); }

  // --- flow -------------------------------------------------------------------------------------
  async function refresh() {
    try {
      const r = await api("/api/state");
      if (r.ok) { state = r.data; if (!visit) { defaultLang = r.data.language; } renderWelcome(); }
    } catch (e) { /* the app is restarting: keep what we have */ }
  }

  // Help: say "staff were called" only once the server has confirmed the call (its acknowledgement removed the
  // event from the outbox); until then tell the visitor to go to the service desk, and keep asking.
  let helpTimer = null;
  function showHelp(help) {
    const confirmed = help === "confirmed" || help === "none";  // none: staff have already cleared it
    const overlay = $("overlay-help");
    [["help-title", "title"], ["help-hint", "hint"]].forEach(([id, part]) => {
      $(id).dataset.i18n = (confirmed ? "help_sent_" : "help_waiting_") + part;
      $(id).textContent = t($(id).dataset.i18n);
    });
    overlay.dataset.help = confirmed ? "confirmed" : "waiting";
    overlay.classList.add("open");
    clearTimeout(helpTimer);
    if (!confirmed) helpTimer = setTimeout(pollHelp, 1000);
  }
  async function pollHelp() {
    if (!$("overlay-help").classList.contains("open")) return;
    try {
      const r = await api("/api/state");
      if (r.ok) { showHelp(r.data.help); return; }
    } catch (e) { /* the app is restarting: ask again */ }
    helpTimer = setTimeout(pollHelp, 1000);
  }

  function reset() {
    clearTimeout(successTimer);
    closeOverlays();
    visit = null;
    entry = { member: "", pin: "" };
    if (staffToken) { api("/api/staff/logout", {}, { "X-Staff-Token": staffToken }); staffToken = null; }
    lang = defaultLang;
    soundOn = K.sound;
    busy = false;
    applyLanguage();
    renderKeypadDisplays();
    show("welcome");
    refresh();
  }

  function start() {
    visit = { purpose: null, adults: 1, children: 0, activity: null, member: null };
    show("purpose");
  }

  function choosePurpose(purpose) {
    visit.purpose = purpose;
    visit.activity = null;
    renderCounts();
    show("people");
  }

  function afterPeople() {
    page = 0;
    pageStarts = [0];
    if (K.scheduled.includes(visit.purpose) && choices().length) { show("activity"); renderActivities(); }
    else show("identify");
  }

  async function submit(member) {
    if (busy) return;
    busy = true;
    const body = { purpose: visit.purpose, adults: visit.adults, children: visit.children };
    if (visit.activity) body.activity = visit.activity;
    if (member) body.member = member;
    try {
      const r = await api("/api/checkin", body);
      if (r.ok) { showSuccess(r.data); return; }
      if (r.status === 422 && r.data.field === "member") {
        entry.member = "";
        renderKeypadDisplays();
        const msg = $("member-message");
        msg.textContent = t("member_invalid");
        msg.classList.add("error");
        show("member");
      } else { showError(r.data); }
    } catch (e) {
      showError();
    } finally { busy = false; }
  }

  function showSuccess(result) {
    const dup = result.status === "duplicate";
    $("success-title").textContent = t(dup ? "duplicate_title" : "success_title");
    const chosen = visit.activity ? state.items.find((i) => i.id === visit.activity) : null;
    const where = chosen ? place(chosen) : "";
    $("success-where").textContent = where ? t("where_go", { place: where }) : "";
    $("success-where").classList.toggle("hidden", !where);
    const people = [];
    if (visit.adults) people.push(plural("adults", visit.adults));
    if (visit.children) people.push(plural("children", visit.children));
    $("success-detail").textContent = dup ? t("duplicate_at", { time: result.at }) : people.join(t("list_sep"));
    show("success");
    requestAnimationFrame(() => { window.kiosk.marks.success = performance.now(); });
    let left = K.success_seconds;
    const tick = () => {
      if (screen !== "success") return;
      if (left <= 0) { reset(); return; }
      $("success-countdown").textContent = t("returning", { seconds: left });
      left -= 1;
      successTimer = setTimeout(tick, 1000);
    };
    tick();
  }

  function keypad(target, key) {
    const max = target === "pin" ? 8 : 16;
    if (key === "del") entry[target] = entry[target].slice(0, -1);
    else if (key === "clear") entry[target] = "";
    else if (entry[target].length < max) entry[target] += key;
    renderKeypadDisplays();
  }

  function buildKeypads() {
    document.querySelectorAll(".keypad").forEach((pad) => {
      ["1", "2", "3", "4", "5", "6", "7", "8", "9", "clear", "0", "del"].forEach((key) => {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "btn key";
        b.dataset.key = key;
        if (key === "del" || key === "clear") { b.dataset.i18n = key === "del" ? "delete" : "clear"; b.classList.add("word"); }
        else b.textContent = key;
        pad.appendChild(b);
      });
    });
  }

  function stopScan() { clearTimeout(scanTimer); scanTimer = null; }
  async function scanLoop() {
    if (screen !== "scan") return;
    try {
      const r = await api("/api/scan", {});
      if (screen !== "scan") return;
      if (r.ok && r.data.member) { submit(r.data.member); return; }
      $("scan-message").textContent = r.ok && r.data.invalid ? t("scan_invalid") : "";
    } catch (e) { /* try again */ }
    scanTimer = setTimeout(scanLoop, 400);
  }

  async function staffLogin() {
    const r = await api("/api/staff/login", { pin: entry.pin });
    entry.pin = "";
    renderKeypadDisplays();
    if (!r.ok) {
      const msg = $("pin-message");
      msg.textContent = t(r.status === 429 ? "pin_locked" : "pin_wrong");
      msg.classList.add("error");
      return;
    }
    staffToken = r.data.token;
    $("pin-message").textContent = "";
    await staffRefresh();
    show("staff");
  }

  async function staffRefresh() {
    const r = await api("/api/staff/status", undefined, { "X-Staff-Token": staffToken });
    if (!r.ok) { reset(); return; }
    const s = r.data;
    $("staff-device").textContent = s.device + " @ " + s.site + " (v" + s.version + ")";
    $("staff-queue").textContent = String(s.queue);
    $("staff-link").textContent = t("staff_link_" + s.link) + " · " + s.broker;
    $("staff-events").textContent = s.last_events.length
      ? s.last_events.map((e) => "#" + e.seq + " " + e.type + " " + (e.purpose || "") + " " + e.ts.slice(11, 16) + "Z").join(" | ")
      : t("staff_no_events");
    document.querySelectorAll("[data-lang]").forEach((b) => {
      b.classList.toggle("primary", b.dataset.lang === s.language);
      b.classList.toggle("secondary", b.dataset.lang !== s.language);
    });
  }

  // --- idle: warn after idle_seconds of quiet, go home warn_seconds later; any tap restarts ---------
  function idleTick() {
    const overlay = $("overlay-idle");
    if (screen === "welcome" || screen === "success" || busy) { overlay.classList.remove("open"); return; }
    const quiet = (performance.now() - lastTouch) / 1000;
    if (quiet >= K.idle_seconds + K.warn_seconds) { reset(); return; }
    if (quiet >= K.idle_seconds) {
      const left = Math.ceil(K.idle_seconds + K.warn_seconds - quiet);
      $("idle-seconds").textContent = String(left);
      $("idle-countdown").textContent = t("idle_hint", { seconds: left });
      overlay.classList.add("open");
    } else {
      overlay.classList.remove("open");  // any tap (even on the header) answers "need more time?"
    }
  }

  // --- events -----------------------------------------------------------------------------------
  function onTap(ev) {
    lastTouch = performance.now();
    const btn = ev.target.closest("button");
    if (!btn) return;
    beep();
    if (btn.id === "btn-more-time") { $("overlay-idle").classList.remove("open"); return; }
    if (btn.id === "btn-idle-home") { reset(); return; }
    if (btn.dataset.close) { $(btn.dataset.close).classList.remove("open"); return; }
    if (btn.dataset.go) {
      if (btn.dataset.go === "member") { entry.member = ""; renderKeypadDisplays(); }
      show(btn.dataset.go);
      if (btn.dataset.go === "welcome") reset();
      return;
    }
    if (btn.dataset.purpose) { choosePurpose(btn.dataset.purpose); return; }
    if (btn.dataset.count) {
      const who = btn.dataset.count;
      const next = visit[who] + Number(btn.dataset.delta);
      const other = who === "adults" ? visit.children : visit.adults;
      if (next >= 0 && next <= 50 && next + other >= 1) visit[who] = next;
      renderCounts();
      return;
    }
    if (btn.dataset.activity) { visit.activity = btn.dataset.activity; show("identify"); return; }
    if (btn.dataset.key) { keypad(btn.closest(".keypad").dataset.target, btn.dataset.key); return; }
    if (btn.dataset.lang) {
      api("/api/staff/language", { language: btn.dataset.lang }, { "X-Staff-Token": staffToken })
        .then(() => { defaultLang = btn.dataset.lang; lang = defaultLang; applyLanguage(); staffRefresh(); });
      return;
    }
    switch (btn.id) {
      case "btn-lang": lang = lang === "en" ? "zh-CN" : "en"; applyLanguage(); break;
      case "btn-sound": soundOn = !soundOn; applyLanguage(); beep(); break;
      case "btn-help":
        api("/api/help", {}).then((r) => { if (r.ok) showHelp(r.data.help); else showError(r.data); })
          .catch(() => showError());
        break;
      case "btn-start": start(); break;
      case "btn-people-next": afterPeople(); break;
      case "btn-page-prev": page = Math.max(0, page - 1); renderActivities(); break;
      case "btn-page-next": page += 1; renderActivities(); break;
      case "btn-not-listed": visit.activity = null; show("identify"); break;
      case "btn-identify-back": visit.activity = null; if (K.scheduled.includes(visit.purpose) && choices().length) show("activity"); else show("people"); break;
      case "btn-anonymous": case "btn-disagree": submit(null); break;
      case "btn-agree": entry.member = ""; renderKeypadDisplays(); $("member-message").textContent = t("member_hint"); $("member-message").classList.remove("error"); show("member"); break;
      case "btn-member-confirm": submit(entry.member); break;
      case "btn-scan": $("scan-message").textContent = ""; show("scan"); scanLoop(); break;
      case "btn-done": reset(); break;
      case "btn-pin-enter": staffLogin(); break;
      case "btn-help-clear": api("/api/staff/help-clear", {}, { "X-Staff-Token": staffToken }); break;
      case "btn-staff-exit": reset(); break;
      default: break;
    }
  }

  document.addEventListener("click", onTap);
  document.addEventListener("pointerdown", () => { lastTouch = performance.now(); window.kiosk.marks.tap = lastTouch; }, true);
  document.addEventListener("keydown", () => { lastTouch = performance.now(); }, true);
  document.addEventListener("contextmenu", (ev) => ev.preventDefault());  // long press: no browser menu
  // Staff mode: press and hold the centre's name (top left) for HOLD_MS; a visitor's tap there does nothing.
  function openStaff() {
    if (screen !== "welcome") return;
    entry.pin = ""; renderKeypadDisplays(); $("pin-message").textContent = ""; show("pin");
  }
  const cancelHold = () => { clearTimeout(holdTimer); holdTimer = null; };
  $("btn-staff").addEventListener("pointerdown", () => { cancelHold(); holdTimer = setTimeout(openStaff, HOLD_MS); });
  ["pointerup", "pointerleave", "pointercancel"].forEach((type) => $("btn-staff").addEventListener(type, cancelHold));
  buildKeypads();
  $("btn-scan").classList.toggle("hidden", true);
  applyLanguage();
  refresh().then(() => { $("btn-scan").classList.toggle("hidden", !state.camera); });
  setInterval(idleTick, 250);
  setInterval(() => { if (screen === "welcome") refresh(); }, 15000);
})();
