// Doctor's web app: log in, see today's appointments with their live status, call a checked-in patient.
// Standards only (fetch, WebSocket, getUserMedia, RTCPeerConnection), so it runs in Chrome, Edge, Firefox and Safari.
"use strict";

const $ = (id) => document.getElementById(id);

async function api(path, options = {}) {
  const res = await fetch(path, {
    credentials: "same-origin",
    headers: options.body ? { "Content-Type": "application/json" } : {},
    ...options,
  });
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = null; }
  if (!res.ok) {
    const err = new Error(body && body.message ? body.message : `HTTP ${res.status}`);
    err.status = res.status;
    err.code = body && body.code;
    throw err;
  }
  return body;
}

// The appointment of the call in progress (or last started), as `call.start` records it.
function callAppointment() {
  return Number(sessionStorage.getItem("mm-appointment"));
}

function localDay(d = new Date()) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

function show(view) {
  for (const v of ["login", "password", "twofactor", "list", "call"]) $(`${v}-view`).hidden = view !== v;
  $("logout").hidden = view === "login";
  $("who").hidden = view === "login";
}

function banner(text, bad = false) {
  $("banner").textContent = text || "";
  $("banner").hidden = !text;
  $("banner").classList.toggle("bad", bad);
}

// ---- appointments ----

let refreshTimer = null;

// The day shown (YYYY-MM-DD, the browser's local day) and each appointment's last known status, so a check-in
// that happens while the doctor watches is told (sound and, if allowed, a browser notification).
const day = {
  shown: localDay(),
  statuses: new Map(),

  move(by) {
    const d = new Date(`${this.shown}T12:00:00`);
    d.setDate(d.getDate() + by);
    this.go(localDay(d));
  },

  go(value) {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return;
    this.shown = value;
    this.statuses.clear();
    loadAppointments();
  },

  // New check-ins since the last look (not on a day's first load).
  noticeCheckIns(appointments) {
    const first = this.statuses.size === 0;
    const arrived = appointments.filter((a) => a.status === "checked_in" && this.statuses.has(a.id) && this.statuses.get(a.id) !== "checked_in");
    this.statuses = new Map(appointments.map((a) => [a.id, a.status]));
    if (first || !arrived.length) return;
    const names = arrived.map((a) => a.patientName).join(", ");
    $("checkin-news").textContent = `${names} checked in at the kiosk.`;
    $("checkin-news").hidden = false;
    chime();
    if (window.Notification && Notification.permission === "granted") {
      try {
        new Notification("Medi-Mitra: a patient checked in", { body: names, tag: "medimitra-checkin" });
      } catch (_) {
        // Some browsers (Android Chrome) allow notifications only from a service worker: the page's notice stays.
      }
    }
  },
};

// A short two-note chime from the page itself (Web Audio): no sound file, nothing to load.
function chime() {
  try {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    const ctx = chime.ctx || (chime.ctx = new Ctx());
    [[880, 0], [660, 0.18]].forEach(([freq, at]) => {
      const o = ctx.createOscillator();
      const g = ctx.createGain();
      o.frequency.value = freq;
      g.gain.setValueAtTime(0.2, ctx.currentTime + at);
      g.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + at + 0.35);
      o.connect(g).connect(ctx.destination);
      o.start(ctx.currentTime + at);
      o.stop(ctx.currentTime + at + 0.35);
    });
    chime.played = (chime.played || 0) + 1;
  } catch (_) {
    // No audio output: the notice on the page is enough.
  }
}

function actionButton(text, cls, onClick, label) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = cls;
  b.textContent = text;
  if (label) b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

// Marks an appointment by hand (the patient checked in at the desk, or did not come), as the API allows.
async function setStatus(a, status) {
  try {
    await api(`/api/appointments/${a.id}/status`, { method: "PUT", body: JSON.stringify({ status }) });
    $("list-error").textContent = "";
  } catch (e) {
    $("list-error").textContent = `Could not mark ${a.patientName}'s appointment: ${e.message}`;
  }
  loadAppointments();
}

async function loadAppointments() {
  try {
    const shown = day.shown;
    const today = shown === localDay();
    $("day").value = shown;
    $("day-title").textContent = today
      ? "Today's appointments"
      : `Appointments on ${new Date(`${shown}T12:00:00`).toLocaleDateString([], { weekday: "long", day: "numeric", month: "long" })}`;
    $("day-today").disabled = today;
    const data = await api(`/api/appointments?day=${shown}`);
    if (shown !== day.shown) return; // the doctor moved on while this loaded
    const rows = $("appointments");
    rows.replaceChildren();
    for (const a of data.appointments) {
      const tr = document.createElement("tr");
      const time = new Date(a.startsAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      let status = a.status.replace("_", " ");
      if (a.status === "checked_in" && a.checkedInAt) {
        const minutes = Math.max(0, Math.floor((Date.now() - new Date(a.checkedInAt)) / 60000));
        status += `, waiting ${minutes} min`;
      }
      for (const [text, cls] of [[time], [a.patientName], [a.reason], [status, `status ${a.status}`]]) {
        const td = document.createElement("td");
        td.textContent = text;
        if (cls) td.className = cls;
        tr.append(td);
      }
      const td = document.createElement("td");
      td.append(actionButton("Details", "details", () => showDetails(a), `Details of ${a.patientName}'s appointment`));
      if (a.status === "checked_in") {
        const b = actionButton("Call", "call", () => call.start(a.id, a.patientName), `Call ${a.patientName}`);
        b.dataset.appointment = a.id;
        td.append(b);
      }
      if (a.status === "scheduled" && today) {
        td.append(actionButton("Check in", "checkin", () => setStatus(a, "checked_in"), `Check in ${a.patientName}`));
      }
      if (a.status === "scheduled" || a.status === "checked_in") {
        td.append(actionButton("No-show", "noshow", () => setStatus(a, "no_show"), `No-show: ${a.patientName}`));
      }
      tr.append(td);
      tr.dataset.id = a.id;
      rows.append(tr);
    }
    $("empty").hidden = data.appointments.length > 0;
    $("list-error").textContent = "";
    if (today) day.noticeCheckIns(data.appointments);
  } catch (e) {
    if (e.status === 401) return start();
    $("list-error").textContent = `Could not load appointments: ${e.message}`;
  }
}

// An appointment's details in a dialog: the patient (age from the date of birth, sex, language, phone), the
// appointment, its notes, the readings the kiosk kept, its calls, and the doctor's earlier visits with this patient.
const LANGUAGES = { en: "English", hi: "Hindi", mr: "Marathi", bn: "Bengali", ta: "Tamil", te: "Telugu" };
const END_REASONS = {
  doctor_ended: "ended by you", patient_ended: "ended by the patient", declined: "declined", no_answer: "not answered",
  doctor_lost: "your connection was lost", media_failed: "the connection failed",
  negotiation_failed: "the browser could not carry the call", kiosk_stopping: "the kiosk stopped",
  session_ended: "your login ended", kiosk_restarted: "the kiosk restarted",
};
let detailsShown = null;

function ageFrom(dateOfBirth, on = new Date()) {
  if (!dateOfBirth) return null;
  const b = new Date(`${dateOfBirth}T12:00:00`);
  if (Number.isNaN(b.getTime())) return null;
  let age = on.getFullYear() - b.getFullYear();
  if (on.getMonth() < b.getMonth() || (on.getMonth() === b.getMonth() && on.getDate() < b.getDate())) age -= 1;
  return age;
}

function listInto(id, items, noneId) {
  const ul = $(id);
  ul.replaceChildren();
  for (const text of items) {
    const li = document.createElement("li");
    li.textContent = text;
    ul.append(li);
  }
  $(noneId).hidden = items.length > 0;
}

async function showDetails(a) {
  detailsShown = a;
  $("d-patient").textContent = a.patientName;
  for (const id of ["d-age", "d-language", "d-phone"]) $(id).textContent = "…";
  $("d-time").textContent = new Date(a.startsAt).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  $("d-reason").textContent = a.reason || "–";
  $("d-status").textContent = a.status.replace("_", " ");
  detailsNote.load(a);
  followUp.prefill(a);
  for (const id of ["d-kept", "d-calls", "d-history"]) $(id).replaceChildren();
  for (const id of ["d-kept-none", "d-calls-none", "d-history-none"]) $(id).hidden = true;
  $("details-error").textContent = "";
  if (!$("details").open) $("details").showModal();
  const problems = [];
  const [patient, readings, calls, history] = await Promise.all([
    api(`/api/patients/${a.patientId}`).catch((e) => problems.push(`the patient (${e.message})`)),
    kept.fetch(a.id).catch((e) => problems.push(`the readings (${e.message})`)),
    api(`/api/appointments/${a.id}/calls`).catch((e) => problems.push(`the calls (${e.message})`)),
    api(`/api/appointments?patientId=${a.patientId}&limit=50`).catch((e) => problems.push(`the earlier visits (${e.message})`)),
  ]);
  if (detailsShown !== a) return;
  if (patient && typeof patient === "object") {
    const age = ageFrom(patient.dateOfBirth);
    const sex = { female: "female", male: "male", other: "other" }[patient.sex] || "sex not recorded";
    $("d-age").textContent = `${age === null ? "age not given" : `${age} years`}, ${sex}`;
    $("d-language").textContent = LANGUAGES[patient.preferredLanguage] || patient.preferredLanguage || "–";
    $("d-phone").textContent = patient.phone || "–";
  }
  if (Array.isArray(readings)) {
    kept.render(readings, $("d-kept"));
    $("d-kept-none").hidden = readings.length > 0;
  }
  if (Array.isArray(calls)) {
    listInto("d-calls", calls.map((c) => {
      const start = new Date(c.startedAt);
      const secs = c.endedAt ? Math.round((new Date(c.endedAt) - start) / 1000) : null;
      const length = secs === null ? "still running" : `${Math.floor(secs / 60)} min ${secs % 60} s`;
      const how = END_REASONS[c.endReason] || (c.endReason ? c.endReason.replace("_", " ") : "");
      return `${start.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}, ${length}${how ? `, ${how}` : ""}`;
    }), "d-calls-none");
  }
  if (history && Array.isArray(history.appointments)) {
    const earlier = history.appointments.filter((h) => h.id !== a.id && new Date(h.startsAt) < new Date(a.startsAt)).reverse();
    listInto("d-history", earlier.map((h) => {
      const when = new Date(h.startsAt).toLocaleDateString([], { dateStyle: "medium" });
      const notes = h.notes ? ` — ${h.notes.split("\n").slice(-1)[0]}` : "";
      return `${when}: ${h.reason || "no reason given"} (${h.status.replace("_", " ")})${notes}`;
    }), "d-history-none");
  }
  if (problems.length) $("details-error").textContent = `Could not load ${problems.join(", ")}.`;
}

// Adds a dated line to an appointment's note (the chat's "save"); the API stamps it with the time and the doctor's
// name, as a new revision. The editors showing that note take it in unless they hold unsaved text.
async function addNote(appointmentId, text) {
  const t = text.trim();
  if (!t) return null;
  const updated = await api(`/api/appointments/${appointmentId}/notes`, { method: "POST", body: JSON.stringify({ text: t }) });
  for (const editor of [detailsNote, callNote]) editor.refresh(updated);
  return updated;
}

// The visit note: one text the doctor writes and edits during and after the call. Every save is a revision the
// kiosk keeps ("Earlier versions"); a save started from an older revision than the kiosk's (another tab or device
// saved since) is refused by the API, and the doctor's text stays in the box with "Load the latest" beside it.
class NoteEditor {
  constructor(prefix) {
    this.prefix = prefix;
    this.id = null;
    this.base = 0;
    this.saved = "";
    this.el("form").addEventListener("submit", (ev) => { ev.preventDefault(); this.save(); });
    this.el("reload").addEventListener("click", () => this.reload());
    this.el("versions").addEventListener("toggle", () => { if (this.el("versions").open) this.showVersions(); });
  }
  el(name) {
    return $(`${this.prefix}-${name}`);
  }
  // Shows appointment `a`'s note as the kiosk has it.
  load(a) {
    this.id = a.id;
    this.base = a.noteRevision || 0;
    this.saved = a.notes || "";
    this.el("text").value = this.saved;
    this.el("reload").hidden = true;
    this.el("versions").open = false;
    this.el("history").replaceChildren();
    this.el("status").textContent = this.base ? `Version ${this.base}.` : "Nothing written yet.";
  }
  dirty() {
    return this.el("text").value.trim() !== this.saved.trim();
  }
  // A newer version of the shown appointment (an addition from the chat): taken in unless the doctor is writing.
  refresh(a) {
    if (!a || a.id !== this.id || (a.noteRevision || 0) === this.base) return;
    if (this.dirty()) {
      this.el("status").textContent = "A newer version was saved elsewhere: save yours, or load the latest.";
      this.el("reload").hidden = false;
    } else {
      this.load(a);
    }
  }
  async open(appointmentId) {
    this.id = appointmentId;
    this.el("text").value = "";
    this.el("status").textContent = "Loading the note…";
    try {
      const a = await api(`/api/appointments/${appointmentId}`);
      if (this.id === appointmentId) this.load(a);
    } catch (e) {
      this.el("status").textContent = `The note could not be loaded (${e.message}).`;
    }
  }
  async reload() {
    if (this.id) await this.open(this.id);
  }
  async save() {
    if (!this.id) return false;
    const text = this.el("text").value;
    try {
      const updated = await api(`/api/appointments/${this.id}/note`, {
        method: "PUT", body: JSON.stringify({ text, baseRevision: this.base }),
      });
      this.load(updated);
      this.el("status").textContent = `Saved (version ${updated.noteRevision}).`;
      if (detailsShown && detailsShown.id === updated.id) detailsShown = updated;
      return true;
    } catch (e) {
      if (e.code === "conflict") {
        this.el("status").textContent = `Not saved: ${e.message}. Your text is still here: copy it, press "Load the latest" and add it there.`;
        this.el("reload").hidden = false;
      } else {
        this.el("status").textContent = `Not saved: ${e.message}. Try again.`;
      }
      return false;
    }
  }
  async showVersions() {
    const ol = this.el("history");
    try {
      const { revisions } = await api(`/api/appointments/${this.id}/note/revisions`);
      ol.replaceChildren(...revisions.map((r) => {
        const li = document.createElement("li");
        const when = new Date(r.savedAt).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
        li.textContent = `Version ${r.revision}, ${when}${r.author ? `, ${r.author}` : ""}`;
        const pre = document.createElement("pre");
        pre.textContent = r.text || "(empty)";
        li.append(pre);
        return li;
      }));
      if (!revisions.length) ol.textContent = "None yet.";
    } catch (e) {
      ol.textContent = `The versions could not be loaded (${e.message}).`;
    }
  }
}
const detailsNote = new NoteEditor("d-note");
const callNote = new NoteEditor("note");

// A follow-up from the appointment's details: the doctor's own calendar, the same patient; the kiosk refuses a time
// that overlaps another of the doctor's appointments and the page says so.
const followUp = {
  prefill(a) {
    const next = new Date(a.startsAt);
    next.setDate(next.getDate() + 7);
    if (next < new Date()) next.setTime(Date.now() + 7 * 24 * 3600 * 1000);
    const pad = (n) => String(n).padStart(2, "0");
    $("fu-date").value = localDay(next);
    $("fu-time").value = `${pad(next.getHours())}:${pad(Math.floor(next.getMinutes() / 5) * 5)}`;
    $("fu-reason").value = "Follow-up";
    $("fu-status").textContent = "";
  },
  async book() {
    const a = detailsShown;
    if (!a) return null;
    const date = $("fu-date").value, time = $("fu-time").value;
    const at = new Date(`${date}T${time}`);
    if (!date || !time || Number.isNaN(at.getTime())) {
      $("fu-status").textContent = "Choose a date and a time.";
      return null;
    }
    if (at < new Date()) {
      $("fu-status").textContent = "That time has passed: choose a later one.";
      return null;
    }
    try {
      const booked = await api("/api/appointments", {
        method: "POST",
        body: JSON.stringify({
          patientId: a.patientId, startsAt: at.toISOString(), durationMinutes: Number($("fu-minutes").value),
          reason: $("fu-reason").value.trim(),
        }),
      });
      const when = new Date(booked.startsAt).toLocaleString([], { dateStyle: "full", timeStyle: "short" });
      $("fu-status").textContent = `Booked: ${a.patientName}, ${when}.`;
      if (localDay(new Date(booked.startsAt)) === day.shown) loadAppointments();
      return booked;
    } catch (e) {
      $("fu-status").textContent = e.code === "conflict"
        ? `Not booked: ${e.message}. Choose another time.`
        : `Not booked: ${e.message}.`;
      return null;
    }
  },
};

// The path to the kiosk as this page sees it, over its own HTTPS connection to the kiosk (`/api/network-probe`):
// the round trip (the median of five empty answers) and the throughput each way. A transfer grows (64 KiB, then
// ×4 up to 4 MiB) until it lasts long enough to time (0.4 s); a download is cut off after 4 s and counted as far as
// it got. Its round trip is not taken off (a slightly low estimate is the safe side), and above 100 Mbit/s the page
// only says so: 4 MiB on a fast LAN is over too soon to time.
const pathProbe = {
  MAX: 4 * 1024 * 1024,
  async roundTrip() {
    const times = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      const r = await fetch("/api/network-probe", { credentials: "same-origin", cache: "no-store" });
      if (r.status !== 204) throw new Error(`HTTP ${r.status}`);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    return times[2];
  },
  // kbit/s from the kiosk to this page.
  async down() {
    let size = 64 * 1024;
    for (let step = 0; step < 4; step++) {
      const t = performance.now();
      const r = await fetch(`/api/network-probe?bytes=${size}`, { credentials: "same-origin", cache: "no-store" });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const reader = r.body.getReader();
      let got = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        got += value.byteLength;
        if (performance.now() - t > 4000) { reader.cancel().catch(() => {}); break; }
      }
      const ms = Math.max(1, performance.now() - t);
      if (ms >= 400 || got < size || size >= this.MAX) return (got * 8) / ms;
      size = Math.min(this.MAX, size * 4);
    }
    return null;
  },
  // kbit/s from this page to the kiosk.
  async up() {
    let size = 64 * 1024;
    for (let step = 0; step < 4; step++) {
      const data = new Uint8Array(size);
      for (let i = 0; i < size; i += 65536) crypto.getRandomValues(data.subarray(i, Math.min(size, i + 65536)));
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), 8000);
      const t = performance.now();
      try {
        const r = await fetch("/api/network-probe", {
          method: "POST", credentials: "same-origin", body: data, signal: abort.signal,
          headers: { "Content-Type": "application/octet-stream" },
        });
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
      } catch (e) {
        if (e.name === "AbortError") return (size * 8) / 8000; // not sent in 8 s: at most this
        throw e;
      } finally {
        clearTimeout(timer);
      }
      const ms = Math.max(1, performance.now() - t);
      if (ms >= 400 || size >= this.MAX) return (size * 8) / ms;
      size = Math.min(this.MAX, size * 4);
    }
    return null;
  },
  async measure() {
    const rtt = await this.roundTrip();
    const down = await this.down();
    const up = await this.up();
    return { rtt: Math.round(rtt), down: Math.round(down), up: Math.round(up) };
  },
};

// What this browser's network allows, from gathering its own ICE candidates with the kiosk's STUN/TURN servers (no
// call is made): a relay candidate means a call can go through the kiosk's TURN server if no direct route exists.
async function iceReach(servers, policy) {
  const pc = new RTCPeerConnection({ iceServers: servers, iceTransportPolicy: policy });
  const types = new Set();
  try {
    pc.createDataChannel("probe");
    const gathered = new Promise((resolve) => {
      pc.onicecandidate = (ev) => {
        if (!ev.candidate) return resolve();
        const m = / typ (\w+)/.exec(ev.candidate.candidate);
        if (m) types.add(m[1]);
      };
      setTimeout(resolve, 5000);
    });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered;
  } finally {
    pc.close();
  }
  return { host: types.has("host"), srflx: types.has("srflx"), relay: types.has("relay") };
}

// The pre-call check: the doctor's camera (a preview) and microphone (a level), whether the page reaches the kiosk
// (its signaling socket), the path to it (round trip and throughput each way), what this browser's network allows
// (STUN/TURN), and the kiosk's own STUN/TURN check (`/api/network-check`, a real TURN allocation), with one plain
// verdict. Its camera and microphone are released when the dialog closes.
const precheck = {
  stream: null,
  timer: null,
  peak: 0,

  async open() {
    // The audio context is made now, while the doctor's click still counts (after an await, Firefox keeps a new
    // one suspended).
    const Ctx = window.AudioContext || window.webkitAudioContext;
    this.ctx = Ctx ? new Ctx() : null;
    $("pc-verdict").textContent = "Checking…";
    for (const id of ["pc-devices", "pc-kiosk", "pc-network"]) $(id).textContent = "…";
    $("precheck").showModal();
    let devices = { audio: false, video: false, why: "" };
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
      $("pc-video").srcObject = this.stream;
      devices = { audio: this.stream.getAudioTracks().length > 0, video: this.stream.getVideoTracks().length > 0, why: "" };
      this.listen(this.stream);
    } catch (e) {
      devices.why = e && e.name === "NotAllowedError" ? "permission denied (allow them in the site settings)" : `not available (${e && e.name})`;
    }
    $("pc-devices").textContent = devices.audio && devices.video ? "working" : `camera and microphone ${devices.why}`;
    const reached = signal.ready;
    $("pc-kiosk").textContent = reached ? "reached" : "not reached: check your internet connection";
    let path = null;
    if (reached) {
      try {
        path = await pathProbe.measure();
        const rate = (k) => (k >= 100000 ? "over 100 Mbit/s" : k >= 1000 ? `${(k / 1000).toFixed(1)} Mbit/s` : `${k} kbit/s`);
        $("pc-path").textContent = `round trip ${path.rtt} ms; from the kiosk ${rate(path.down)}, to the kiosk ${rate(path.up)}`;
      } catch (e) {
        $("pc-path").textContent = `not measured (${e.message})`;
      }
    } else {
      $("pc-path").textContent = "not measured: the kiosk is not reached";
    }
    try {
      const ice = await iceReach(signal.iceServers, signal.iceTransportPolicy);
      const turn = signal.iceServers.some((s) => [].concat(s.urls).some((u) => /^turns?:/.test(u)));
      $("pc-ice").textContent = ice.relay
        ? "the kiosk's relay (TURN) is reached: a call can go through it when no direct route exists"
        : turn
          ? "the kiosk's relay (TURN) is not reached from here: a call needs a direct route"
          : ice.srflx ? "no relay configured; behind a NAT (a direct route may still work)" : "no relay configured";
    } catch (e) {
      $("pc-ice").textContent = `not checked (${e.message})`;
    }
    let network = null;
    try {
      network = await api("/api/network-check");
      $("pc-network").textContent = network.verdict;
    } catch (e) {
      $("pc-network").textContent = `not checked (${e.message})`;
    }
    this.path = path;
    $("pc-verdict").textContent = this.verdict(devices, reached, network, path);
  },

  // Video needs about 300 kbit/s each way at its smallest picture (the kiosk's ladder ends at 320×180; audio
  // takes ~40); a round trip over 800 ms makes a conversation hard whatever the picture.
  verdict(devices, reached, network, path) {
    if (!reached) return "Cannot reach the kiosk: check your internet connection, then try again.";
    if (!devices.audio && !devices.video) return "Your camera and microphone do not work: the patient would not see or hear you.";
    if (path && Math.min(path.down, path.up) < 100) return "The link to the kiosk is too slow even for audio: try another network.";
    if (path && (Math.min(path.down, path.up) < 300 || path.rtt > 800)) {
      return `Audio only recommended: the link to the kiosk is slow (${Math.min(path.down, path.up)} kbit/s, round trip ${path.rtt} ms).`;
    }
    if (network && /^audio only/.test(network.verdict)) return "Audio only recommended: the kiosk's network is slow.";
    if (!devices.video) return "Audio only: your camera does not work.";
    if (network && !network.goodForVideo) return "Good for video from the clinic's own network; calls from outside may fail (see the kiosk's network).";
    return "Good for video.";
  },

  // The microphone's level, 10 times a second (Web Audio analyser, RMS of the waveform).
  listen(stream) {
    try {
      const ctx = this.ctx;
      $("pc-level").hidden = false;
      $("pc-level-note").textContent = "";
      if (ctx.state === "suspended") ctx.resume().catch(() => {});
      // A browser without a working audio output keeps the context suspended: say so rather than show a level
      // that never moves.
      setTimeout(() => {
        if (this.ctx === ctx && ctx.state !== "running") {
          $("pc-level").hidden = true;
          $("pc-level-note").textContent = "level not shown: this browser has no working audio output";
        }
      }, 1500);
      const analyser = ctx.createAnalyser();
      ctx.createMediaStreamSource(stream).connect(analyser);
      const data = new Float32Array(analyser.fftSize);
      this.timer = setInterval(() => {
        analyser.getFloatTimeDomainData(data);
        const rms = Math.sqrt(data.reduce((a, v) => a + v * v, 0) / data.length);
        const level = Math.min(1, rms * 4);
        this.peak = Math.max(this.peak, level);
        $("pc-level").value = level;
      }, 100);
    } catch (_) {
      $("pc-level").hidden = true;
    }
  },

  close() {
    clearInterval(this.timer);
    this.timer = null;
    if (this.ctx) this.ctx.close();
    this.ctx = null;
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    this.stream = null;
    $("pc-video").srcObject = null;
  },
};

// ---- signaling ----

const signal = {
  ws: null,
  iceServers: [],
  // Changes with every start of the kiosk: a call of an earlier run cannot be resumed.
  bootId: null,
  // "relay" where the kiosk's site lets only TURN through: the page uses the relay too.
  iceTransportPolicy: "all",
  ready: false,
  retry: 0,
  handlers: {},
  connect() {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/signal`);
    this.ws = ws;
    ws.onopen = () => { this.retry = 0; ws.send(JSON.stringify({ type: "hello", version: 1 })); };
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch (_) { return; }
      if (m.type === "welcome") {
        this.iceServers = m.iceServers || [];
        this.bootId = m.bootId;
        this.iceTransportPolicy = m.iceTransportPolicy || "all";
        this.ready = true;
        setLink("online");
      }
      const h = this.handlers[m.type];
      if (h) h(m);
    };
    ws.onclose = () => {
      this.ready = false;
      if (this.ws !== ws) return;
      setLink("offline");
      call.onSignalLost();
      const delay = Math.min(5000, 500 * 2 ** this.retry++);
      setTimeout(() => { if (this.ws === ws) this.connect(); }, delay);
    };
  },
  send(m) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m));
  },
  close() {
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close();
  },
};

function setLink(state) {
  $("link-state").hidden = false;
  $("link-state").textContent = state === "online" ? "Kiosk connected" : "Reconnecting to the kiosk…";
}

// ---- the call ----

const END_MESSAGES = {
  declined: "The patient declined the call.",
  no_answer: "No answer at the kiosk.",
  patient_ended: "The patient ended the call.",
  doctor_ended: "Call ended.",
  doctor_lost: "The connection to the kiosk was lost and the call ended.",
  session_ended: "Your login session ended (logged out, password changed, account disabled or expired). Log in again.",
  media_failed: "The network could not carry the call. Check the connection and call again.",
  negotiation_failed: "Your browser and the kiosk could not agree on audio and video.",
  not_resumable: "The call could not be resumed; it has ended.",
  kiosk_stopping: "The kiosk is restarting, so the call ended. The patient stays checked in: call again in a minute.",
  kiosk_restarted: "The kiosk restarted and the call ended. The patient stays checked in: call again when the kiosk is back.",
};

// The kiosk's medical devices, live during a call: numbers and states on the "vitals" data channel (reliable),
// the pulse oximeter's waveform on "vitals-wave" (unordered, no retransmission). Nothing here is stored.
const VITAL_STATES = {
  no_finger: "No finger in the clip",
  searching: "Searching for a pulse…",
  unplugged: "The oximeter is unplugged",
  settling: "Weight settling…",
  overload: "The scale is overloaded",
};
// Readings the kiosk kept with an appointment (steady values only, stored on the kiosk), from the FHIR R4 Bundle
// the API gives: shown during the call, under the live numbers, and afterwards in the appointment's details.
const KEPT_NAMES = { "59408-5": "SpO₂", "8867-4": "Pulse", "29463-7": "Weight", "8480-6": "Systolic", "8462-4": "Diastolic" };
const kept = {
  timer: null,

  async fetch(appointmentId) {
    const bundle = await api(`/api/appointments/${appointmentId}/observations`);
    return ((bundle && bundle.entry) || []).map((e) => e.resource).map((r) => ({
      name: KEPT_NAMES[r.code.coding[0].code] || r.code.text,
      value: r.valueQuantity.value,
      unit: r.valueQuantity.unit,
      at: new Date(r.effectiveDateTime),
      device: r.device ? r.device.display : "",
    }));
  },

  render(list, into) {
    into.replaceChildren();
    for (const o of list) {
      const li = document.createElement("li");
      const time = document.createElement("time");
      time.dateTime = o.at.toISOString();
      time.textContent = o.at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      li.append(time, ` ${o.name}: ${o.value} ${o.unit}`);
      li.title = o.device;
      into.append(li);
    }
  },

  // While a call shows vitals, the kept list is read again every 5 s (a reading is kept once it held still).
  follow() {
    if (this.timer) return;
    const refresh = async () => {
      const id = callAppointment();
      if (!id || $("vitals").hidden) return;
      try {
        const list = await this.fetch(id);
        $("v-kept").hidden = list.length === 0;
        this.render(list, $("v-kept-list"));
      } catch (_) {
        // Shown again at the next refresh; the live numbers do not depend on it.
      }
    };
    refresh();
    this.timer = setInterval(refresh, 5000);
  },

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    $("v-kept").hidden = true;
    $("v-kept-list").replaceChildren();
  },
};

const vitals = {
  // The latest waveform samples (0-100), oldest first: 4 s at 60 a second.
  wave: [],
  // What was shown and when (Date.now()), for the latency benchmark and tests; the last 500 updates.
  shownLog: [],
  drawing: false,

  attach(channel) {
    if (channel.label !== "vitals" && channel.label !== "vitals-wave") return;
    channel.onmessage = (ev) => this.onMessage(ev.data);
  },

  onMessage(text) {
    let m;
    try {
      m = JSON.parse(text);
    } catch {
      return;
    }
    if (m.type === "pleth" && Array.isArray(m.samples)) {
      this.wave.push(...m.samples.filter((s) => Number.isInteger(s)));
      if (this.wave.length > 240) this.wave.splice(0, this.wave.length - 240);
      this.startDrawing();
      return;
    }
    if (m.type !== "vitals" || typeof m.device !== "string") return;
    $("vitals").hidden = false;
    kept.follow();
    const value = (v) => (v === undefined || v === null ? "--" : String(v));
    if (m.device.startsWith("cms50d")) {
      $("v-spo2").textContent = value(m.spo2);
      $("v-pulse").textContent = value(m.pulse);
      $("v-state").textContent = VITAL_STATES[m.state] || "";
      $("v-oximeter").hidden = false;
      if (m.state !== "reading") this.wave = [];
    } else {
      $("v-weight").textContent = m.weight_kg === undefined ? "--" : m.weight_kg.toFixed(1);
      $("v-weight-state").textContent = m.state === "unplugged" ? "The scale is unplugged" : VITAL_STATES[m.state] || "";
      $("v-scale").hidden = false;
    }
    this.shownLog.push({ device: m.device, state: m.state, spo2: m.spo2, pulse: m.pulse, weight: m.weight_kg, at: Date.now() });
    if (this.shownLog.length > 500) this.shownLog.shift();
  },

  startDrawing() {
    if (this.drawing) return;
    this.drawing = true;
    const draw = () => {
      const canvas = $("v-pleth");
      if ($("vitals").hidden || !canvas) {
        this.drawing = false;
        return;
      }
      const g = canvas.getContext("2d");
      g.clearRect(0, 0, canvas.width, canvas.height);
      g.strokeStyle = "#0b6e4f";
      g.lineWidth = 2;
      g.beginPath();
      this.wave.forEach((s, i) => {
        const x = (i / 239) * canvas.width;
        const y = canvas.height - 2 - (s / 100) * (canvas.height - 4);
        if (i === 0) g.moveTo(x, y);
        else g.lineTo(x, y);
      });
      g.stroke();
      requestAnimationFrame(draw);
    };
    requestAnimationFrame(draw);
  },

  reset() {
    this.wave = [];
    kept.stop();
    $("vitals").hidden = true;
    $("v-oximeter").hidden = true;
    $("v-scale").hidden = true;
    for (const id of ["v-spo2", "v-pulse", "v-weight"]) $(id).textContent = "--";
    for (const id of ["v-state", "v-weight-state"]) $(id).textContent = "";
  },
};

// Chat with the patient on the call's "chat" data channel: short messages shown large on the kiosk; the patient
// answers with quick replies that arrive here in English. Nothing is stored.
const chat = {
  channel: null,
  attach(channel) {
    if (channel.label !== "chat") return;
    this.channel = channel;
    $("chat").hidden = false;
    channel.onmessage = (ev) => {
      let m;
      try {
        m = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (m.type === "reply" && typeof m.text === "string") this.log("Patient", m.text);
    };
  },
  send(text) {
    const t = text.trim();
    if (!t || !this.channel || this.channel.readyState !== "open") return false;
    this.channel.send(JSON.stringify({ type: "chat", text: t }));
    this.log("You", t);
    return true;
  },
  // The conversation, for "Save the chat to the notes" (nothing is stored unless the doctor saves it).
  lines: [],
  log(who, text) {
    const li = document.createElement("li");
    const b = document.createElement("strong");
    b.textContent = `${who}: `;
    li.append(b, document.createTextNode(text));
    $("chat-log").append(li);
    this.lines.push(`${who === "You" ? "Doctor" : who}: ${text}`);
    $("chat-save").disabled = false;
    $("chat-saved").textContent = "";
  },
  // Adds the conversation to the appointment's notes (the newest lines, within a note's 2000 characters).
  async save() {
    const id = callAppointment();
    if (!id || !this.lines.length) return false;
    const lines = [...this.lines];
    let text = `Chat during the call:\n${lines.join("\n")}`;
    while (text.length > 2000 && lines.length > 1) {
      lines.shift();
      text = `Chat during the call (the latest lines):\n${lines.join("\n")}`;
    }
    try {
      await addNote(id, text.slice(0, 2000));
      $("chat-saved").textContent = "Saved to the appointment's notes.";
      $("chat-save").disabled = true;
      return true;
    } catch (e) {
      $("chat-saved").textContent = `Not saved: ${e.message}. Try again.`;
      return false;
    }
  },
  reset() {
    this.channel = null;
    this.lines = [];
    $("chat").hidden = true;
    $("chat-log").replaceChildren();
    $("chat-save").disabled = true;
    $("chat-saved").textContent = "";
  },
};

// Showing the patient a picture, a document page or the doctor's screen. It goes on the kiosk's second video
// transceiver, so the patient sees it large with the doctor's face small; a kiosk that offers no such transceiver
// gets it in place of the camera.
const share = {
  track: null,
  timer: null,
  videoTransceivers() {
    return call.pc ? call.pc.getTransceivers().filter((x) => x.receiver.track.kind === "video") : [];
  },
  // Whether the shared picture has a stream of its own (the camera keeps going).
  ownStream() {
    return this.videoTransceivers().length > 1;
  },
  videoSender() {
    const v = this.videoTransceivers();
    return v.length ? v[v.length > 1 ? 1 : 0].sender : null;
  },
  async start(track) {
    const sender = this.videoSender();
    if (!sender || !chat.channel || chat.channel.readyState !== "open") return false;
    await sender.replaceTrack(track);
    if (this.track && this.track !== track) this.track.stop();
    this.track = track;
    chat.channel.send(JSON.stringify({ type: "sharing", on: true }));
    $("share-stop").hidden = false;
    return true;
  },
  // An image, letterboxed into 1280x720 and redrawn 5 times a second (a canvas stream only sends changed frames).
  async showImage(url) {
    const img = new Image();
    img.src = url;
    await img.decode();
    const c = document.createElement("canvas");
    c.width = 1280;
    c.height = 720;
    const g = c.getContext("2d");
    const scale = Math.min(c.width / img.width, c.height / img.height);
    const [w, h] = [img.width * scale, img.height * scale];
    const draw = () => {
      g.fillStyle = "#000";
      g.fillRect(0, 0, c.width, c.height);
      g.drawImage(img, (c.width - w) / 2, (c.height - h) / 2, w, h);
    };
    draw();
    // What is shown, for support and tests.
    this.canvas = c;
    clearInterval(this.timer);
    this.timer = setInterval(draw, 200);
    return this.start(c.captureStream(5).getVideoTracks()[0]);
  },
  async showScreen() {
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: true });
    const track = stream.getVideoTracks()[0];
    track.onended = () => this.stop();
    clearInterval(this.timer);
    pdf.close();
    return this.start(track);
  },
  async stop() {
    clearInterval(this.timer);
    this.timer = null;
    const sender = this.videoSender();
    const camera = call.local && call.local.getVideoTracks()[0];
    if (sender) await sender.replaceTrack(this.ownStream() ? null : camera || null);
    if (this.track) this.track.stop();
    this.track = null;
    if (chat.channel && chat.channel.readyState === "open") chat.channel.send(JSON.stringify({ type: "sharing", on: false }));
    $("share-stop").hidden = true;
    pdf.close();
  },
  reset() {
    clearInterval(this.timer);
    this.timer = null;
    if (this.track) this.track.stop();
    this.track = null;
    $("share-stop").hidden = true;
    pdf.close();
  },
};

// A PDF's pages (a prescription, a report, a diagram), drawn by pdf.js and shown one at a time like a picture.
// pdf.js is served by the kiosk and loaded only when a doctor first shows a PDF.
const pdf = {
  lib: null,
  doc: null,
  task: null,
  page: 1,

  async open(data) {
    if (!this.lib) {
      this.lib = await import("/vendor/pdf.min.mjs");
      this.lib.GlobalWorkerOptions.workerSrc = "/vendor/pdf.worker.min.mjs";
    }
    this.close();
    const task = this.lib.getDocument({ data });
    this.task = task;
    this.doc = await task.promise;
    this.page = 1;
    return this.show();
  },

  // Draws the page at the shared picture's height (720 lines, twice that for a landscape page's width) and shows it.
  async show() {
    const page = await this.doc.getPage(this.page);
    const unit = page.getViewport({ scale: 1 });
    const viewport = page.getViewport({ scale: Math.min(1440 / unit.width, 1440 / unit.height) });
    const c = document.createElement("canvas");
    c.width = Math.ceil(viewport.width);
    c.height = Math.ceil(viewport.height);
    const g = c.getContext("2d");
    g.fillStyle = "#fff";
    g.fillRect(0, 0, c.width, c.height);
    await page.render({ canvasContext: g, canvas: c, viewport }).promise;
    const shown = await share.showImage(c.toDataURL("image/png"));
    $("share-page").textContent = `Page ${this.page} of ${this.doc.numPages}`;
    $("share-prev").disabled = this.page <= 1;
    $("share-next").disabled = this.page >= this.doc.numPages;
    $("share-pages").hidden = !shown;
    return shown;
  },

  async turn(by) {
    if (!this.doc) return false;
    const next = Math.min(Math.max(this.page + by, 1), this.doc.numPages);
    if (next === this.page) return false;
    this.page = next;
    return this.show();
  },

  close() {
    $("share-pages").hidden = true;
    const task = this.task;
    this.doc = null;
    this.task = null;
    // The loading task's destroy frees the document and its worker (PDFDocumentLoadingTask.destroy, a promise).
    if (task) Promise.resolve().then(() => task.destroy()).catch(() => {});
  },
};

const call = {
  id: null,
  sessionId: null,
  pc: null,
  local: null,
  pendingCandidates: [],
  statsTimer: null,
  lastBytes: null,
  state: "idle",
  stats: {},
  timing: null,
  // The call this page last ended itself: the kiosk's late word of that end is not about the next call.
  lastEndedId: null,

  capabilities() {
    const caps = (window.RTCRtpReceiver && RTCRtpReceiver.getCapabilities && RTCRtpReceiver.getCapabilities("video")) || { codecs: [] };
    return { video: caps.codecs.map((c) => ({ mimeType: c.mimeType, sdpFmtpLine: c.sdpFmtpLine || null, clockRate: c.clockRate || null })) };
  },

  // The camera and microphone, or whichever of them opens; the controls of a missing one are disabled with why.
  async media() {
    if (this.local) return this.local;
    const video = { width: { ideal: 1280 }, height: { ideal: 720 } };
    let error = null;
    for (const ask of [{ audio: true, video }, { audio: true }, { video }]) {
      try {
        this.local = await navigator.mediaDevices.getUserMedia(ask);
        break;
      } catch (e) {
        error = error || e;
        if (e && e.name === "NotAllowedError") break; // denied: asking again for less is refused the same way
      }
    }
    if (this.local) $("local-video").srcObject = this.local;
    const has = (kind) => Boolean(this.local && this.local.getTracks().some((t) => t.kind === kind));
    this.explainControls(has("audio"), has("video"), error);
    return this.local;
  },

  // Mute and Camera off act only on a device the page opened; otherwise they are disabled and the page says why.
  explainControls(audio, video, error) {
    const denied = error && error.name === "NotAllowedError";
    const reason = denied
      ? "permission was denied (allow the camera and microphone in the browser's site settings, then call again)"
      : `it could not be opened (${error && error.name ? error.name : "not found"}; is it connected, or used by another program?)`;
    const missing = [];
    for (const [id, ok, what] of [["mute", audio, "microphone"], ["camera", video, "camera"]]) {
      $(id).disabled = !ok;
      $(id).title = ok ? "" : `No ${what}: ${reason}`;
      if (!ok) missing.push(what);
    }
    const notes = missing.length ? [`No ${missing.join(" or ")}: ${reason}.`] : [];
    if (!audio && !video) notes.push("The patient will not see or hear you.");
    else if (!audio) notes.push("The patient will see you but not hear you: use the chat.");
    else if (!video) notes.push("The patient will hear you but not see you.");
    $("controls-note").textContent = notes.join(" ");
    $("controls-note").hidden = notes.length === 0;
    if (!audio || !video) banner(notes.join(" "), true);
  },

  async start(appointmentId, patientName) {
    if (this.id) return;
    this.timing = { clickedAt: performance.now(), firstFrameAt: null };
    banner("");
    show("call");
    this.setStatus(`Calling ${patientName}…`);
    await this.media();
    sessionStorage.setItem("mm-appointment", String(appointmentId));
    callNote.open(appointmentId);
    signal.send({ type: "call:start", appointmentId, capabilities: this.capabilities() });
  },

  setStatus(text) {
    $("call-status").textContent = text;
  },

  // Whether a message about call `callId` is late news: about the call this page ended itself, or about another
  // call than the one in progress. The kiosk's last words about an ended call can arrive after the next call has
  // started (a socket stalled by a network cut delivers them in one burst).
  isStale(callId) {
    return !!callId && (callId === this.lastEndedId || (!!this.id && callId !== this.id));
  },

  onState(m) {
    if (this.isStale(m.callId)) return;
    this.id = m.callId;
    this.state = m.state;
    sessionStorage.setItem("mm-call", m.callId);
    sessionStorage.setItem("mm-boot", signal.bootId || "");
    show("call");
    const text = { ringing: "Ringing the patient…", connecting: "Connecting…", connected: "Connected", reconnecting: "Reconnecting…" }[m.state] || m.state;
    this.setStatus(text);
    $("stat-state").textContent = `${m.state} (${m.codec})`;
  },

  async onOffer(m) {
    this.closePeer();
    this.sessionId = m.sessionId;
    const pc = new RTCPeerConnection({ iceServers: signal.iceServers, iceTransportPolicy: signal.iceTransportPolicy });
    this.pc = pc;
    pc.ontrack = (ev) => {
      const v = $("remote-video");
      if (!v.srcObject) v.srcObject = new MediaStream();
      v.srcObject.addTrack(ev.track);
      // Time to first picture, shown in the stats and read by the call benchmark.
      if (ev.track.kind === "video" && v.requestVideoFrameCallback) {
        v.requestVideoFrameCallback(() => {
          if (this.timing && !this.timing.firstFrameAt) this.timing.firstFrameAt = performance.now();
        });
      }
    };
    pc.ondatachannel = (ev) => {
      vitals.attach(ev.channel);
      chat.attach(ev.channel);
    };
    pc.onicecandidate = (ev) => {
      const c = ev.candidate;
      signal.send({
        type: "ice:candidate",
        sessionId: m.sessionId,
        candidate: c && c.candidate ? { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex || 0 } : null,
      });
    };
    pc.oniceconnectionstatechange = () => {
      if (this.pc !== pc) return;
      // A lost path shows at once; the kiosk decides when to replace the session (and says so with call:state).
      if (pc.iceConnectionState === "disconnected") this.setStatus("Reconnecting…");
      if (pc.iceConnectionState === "failed") {
        this.setStatus("Reconnecting…");
        signal.send({ type: "session:failed", sessionId: m.sessionId, reason: "ICE failed in the browser" });
      }
    };
    try {
      await pc.setRemoteDescription({ type: "offer", sdp: m.sdp });
      // Attach our tracks to the transceivers the kiosk offered (addTrack would add unmatched m-lines). The first
      // video transceiver carries the camera; a second one, which the kiosk offers receive-only, what the doctor
      // shares (no track until then: `share` attaches it without renegotiating).
      let videos = 0;
      for (const t of pc.getTransceivers()) {
        const kind = t.receiver.track.kind;
        if (kind === "video" && videos++ > 0) {
          t.direction = "sendonly";
          continue;
        }
        const track = this.local && this.local.getTracks().find((x) => x.kind === kind);
        if (track) {
          await t.sender.replaceTrack(track);
          t.direction = "sendrecv";
        } else {
          t.direction = "recvonly";
        }
      }
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      // For support and tests: the descriptions of the session in use.
      this.sdp = { offer: m.sdp, answer: pc.localDescription.sdp };
      signal.send({ type: "sdp:answer", sessionId: m.sessionId, sdp: pc.localDescription.sdp });
      for (const c of this.pendingCandidates.splice(0)) await this.addCandidate(c);
      this.startStats();
    } catch (e) {
      banner(`Could not set up the call: ${e.message}`, true);
      signal.send({ type: "session:failed", sessionId: m.sessionId, reason: String(e.message || e) });
    }
  },

  async addCandidate(c) {
    try {
      if (c) await this.pc.addIceCandidate({ candidate: c.candidate, sdpMLineIndex: c.sdpMLineIndex, sdpMid: c.sdpMid ?? null });
      else await this.pc.addIceCandidate();
    } catch (e) {
      console.warn("candidate refused", e);
    }
  },

  onCandidate(m) {
    if (m.sessionId !== this.sessionId) return;
    if (!this.pc || !this.pc.remoteDescription) this.pendingCandidates.push(m.candidate);
    else this.addCandidate(m.candidate);
  },

  onEnded(m) {
    if (this.isStale(m.callId)) return;
    banner(END_MESSAGES[m.reason] || `The call ended (${m.reason}).`, m.reason !== "doctor_ended");
    this.cleanup();
  },

  end() {
    if (this.id) signal.send({ type: "call:end", callId: this.id, reason: "doctor" });
    this.lastEndedId = this.id;
    this.cleanup();
    banner(END_MESSAGES.doctor_ended);
  },

  onSignalLost() {
    if (this.id) this.setStatus("Network lost: reconnecting to the kiosk…");
  },

  async onWelcome(m) {
    const saved = sessionStorage.getItem("mm-call");
    const restarted = saved && sessionStorage.getItem("mm-boot") && sessionStorage.getItem("mm-boot") !== m.bootId;
    if (restarted) {
      // The kiosk started again since this call began (a crash or a power cut): the call is over.
      sessionStorage.removeItem("mm-call");
      if (this.id) this.onEnded({ reason: "kiosk_restarted" });
      else banner(END_MESSAGES.kiosk_restarted, true);
    } else if (saved && m.resumableCallId === saved) {
      this.id = saved;
      show("call");
      this.setStatus("Reconnecting…");
      await this.media();
      signal.send({ type: "call:resume", callId: saved, capabilities: this.capabilities() });
    } else if (saved) {
      sessionStorage.removeItem("mm-call");
      if (this.id) this.onEnded({ reason: "not_resumable" });
    }
  },

  closePeer() {
    if (this.pc) this.pc.close();
    this.pc = null;
    this.stats = {};
    this.lastBytes = null;
    this.pendingCandidates = [];
    $("remote-video").srcObject = null;
    vitals.reset();
    chat.reset();
    share.reset();
  },

  cleanup() {
    this.closePeer();
    clearInterval(this.statsTimer);
    this.statsTimer = null;
    this.lastBytes = null;
    this.id = null;
    this.sessionId = null;
    this.state = "idle";
    sessionStorage.removeItem("mm-call");
    sessionStorage.removeItem("mm-boot");
    if (this.local) this.local.getTracks().forEach((t) => t.stop());
    this.local = null;
    $("local-video").srcObject = null;
    $("mute").setAttribute("aria-pressed", "false");
    $("camera").setAttribute("aria-pressed", "false");
    show("list");
    loadAppointments();
  },

  toggle(kind, button) {
    if (!this.local) return;
    const tracks = this.local.getTracks().filter((t) => t.kind === kind);
    const off = button.getAttribute("aria-pressed") !== "true";
    tracks.forEach((t) => { t.enabled = !off; });
    button.setAttribute("aria-pressed", String(off));
    if (kind === "audio") button.textContent = off ? "Unmute" : "Mute";
    else button.textContent = off ? "Camera on" : "Camera off";
  },

  startStats() {
    clearInterval(this.statsTimer);
    this.statsTimer = setInterval(() => this.readStats(), 1000);
  },

  async readStats() {
    if (!this.pc) return;
    const report = await this.pc.getStats();
    // The camera's sender is the first video transceiver's; a second one carries what the doctor shares and has
    // stats of its own (without a track they have no frame size), which must not overwrite the camera's.
    const cameraMid = (this.pc.getTransceivers().find((t) => t.receiver.track.kind === "video") || {}).mid;
    const s = {
      framesDecoded: 0, audioPacketsReceived: 0, bytesIn: 0, bytesOut: 0, lost: 0, received: 0, rtt: null, width: 0,
      height: 0, fps: 0, route: null, localCandidates: [], remoteCandidates: [],
      // Loss repair as the browser sees it: what reached it repaired, what it asked for.
      retransmittedReceived: 0, fecReceived: 0, nacksSent: 0, plisSent: 0, freezeCount: 0, freezeSeconds: 0,
      audioEnergy: 0, concealedSamples: 0,
      // What the browser sends the kiosk.
      retransmittedSent: 0, nacksReceived: 0, plisReceived: 0, sentWidth: 0, sentHeight: 0, sentFps: 0,
      qualityLimitation: null,
    };
    report.forEach((r) => {
      // The candidate pair carrying the call: both ends' candidate types tell direct from relayed.
      if (r.type === "transport" && r.selectedCandidatePairId) {
        const pair = report.get(r.selectedCandidatePairId);
        const local = pair && report.get(pair.localCandidateId);
        const remote = pair && report.get(pair.remoteCandidateId);
        if (local && remote) s.route = { local: local.candidateType, remote: remote.candidateType };
      }
      if (r.type === "inbound-rtp") {
        s.bytesIn += r.bytesReceived || 0;
        s.lost += r.packetsLost || 0;
        s.received += r.packetsReceived || 0;
        if (r.kind === "video") {
          s.framesDecoded = r.framesDecoded || 0;
          s.width = r.frameWidth || 0;
          s.height = r.frameHeight || 0;
          s.fps = r.framesPerSecond || 0;
          s.retransmittedReceived = r.retransmittedPacketsReceived || 0;
          s.fecReceived = r.fecPacketsReceived || 0;
          s.nacksSent = r.nackCount || 0;
          s.plisSent = r.pliCount || 0;
          s.freezeCount = r.freezeCount || 0;
          s.freezeSeconds = r.totalFreezesDuration || 0;
          s.videoLost = r.packetsLost || 0;
          s.videoReceived = r.packetsReceived || 0;
        } else if (r.kind === "audio") {
          s.audioPacketsReceived = r.packetsReceived || 0;
          s.audioEnergy = r.totalAudioEnergy || 0;
          s.concealedSamples = r.concealedSamples || 0;
        }
      } else if (r.type === "outbound-rtp") {
        s.bytesOut += r.bytesSent || 0;
        if (r.kind === "video" && (r.mid === undefined || !cameraMid || r.mid === cameraMid)) {
          s.retransmittedSent = r.retransmittedPacketsSent || 0;
          s.nacksReceived = r.nackCount || 0;
          s.plisReceived = r.pliCount || 0;
          s.sentWidth = r.frameWidth || 0;
          s.sentHeight = r.frameHeight || 0;
          s.sentFps = r.framesPerSecond || 0;
          s.qualityLimitation = r.qualityLimitationReason || null;
        }
      } else if (r.type === "local-candidate") {
        s.localCandidates.push(r.candidateType);
      } else if (r.type === "remote-candidate") {
        s.remoteCandidates.push(r.candidateType);
      } else if (r.type === "candidate-pair" && r.nominated && r.state === "succeeded" && r.currentRoundTripTime !== undefined) {
        s.rtt = r.currentRoundTripTime;
      }
    });
    const now = performance.now();
    if (this.lastBytes) {
      const dt = (now - this.lastBytes.t) / 1000;
      s.kbpsIn = Math.round(((s.bytesIn - this.lastBytes.in) * 8) / 1000 / dt);
      s.kbpsOut = Math.round(((s.bytesOut - this.lastBytes.out) * 8) / 1000 / dt);
    }
    this.lastBytes = { t: now, in: s.bytesIn, out: s.bytesOut };
    this.stats = s;
    $("stat-state").textContent = `${this.pc.connectionState}`;
    const relayed = s.route && (s.route.local === "relay" || s.route.remote === "relay");
    $("stat-route").textContent = s.route ? (relayed ? "relayed (TURN)" : "direct") : "–";
    $("stat-in").textContent = s.kbpsIn !== undefined ? `${s.kbpsIn} kbit/s` : "–";
    $("stat-out").textContent = s.kbpsOut !== undefined ? `${s.kbpsOut} kbit/s` : "–";
    const total = s.lost + s.received;
    $("stat-loss").textContent = total ? `${((100 * s.lost) / total).toFixed(1)} %` : "–";
    $("stat-rtt").textContent = s.rtt !== null ? `${Math.round(s.rtt * 1000)} ms` : "–";
    $("stat-video").textContent = s.width ? `${s.width}×${s.height} @ ${Math.round(s.fps)} fps` : "–";
    // What this browser sends, and why it sends less than its camera could (bandwidth, cpu; none).
    const limit = s.qualityLimitation && s.qualityLimitation !== "none" ? `limited by ${s.qualityLimitation}` : "not limited";
    $("stat-sent-video").textContent = s.sentWidth ? `${s.sentWidth}×${s.sentHeight} @ ${Math.round(s.sentFps)} fps, ${limit}` : "–";
    $("stat-repair").textContent =
      `${s.retransmittedReceived} retransmitted, ${s.fecReceived} FEC; asked ${s.nacksSent} NACK, ${s.plisSent} PLI`;
    $("stat-freezes").textContent = `${s.freezeCount} (${s.freezeSeconds.toFixed(1)} s)`;
  },
};

// For tests and support: the call as the page sees it.
window.medimitra = { call, signal, vitals, chat, share, precheck };

signal.handlers = {
  welcome: (m) => call.onWelcome(m),
  "call:state": (m) => call.onState(m),
  "sdp:offer": (m) => call.onOffer(m),
  "ice:candidate": (m) => call.onCandidate(m),
  "call:ended": (m) => call.onEnded(m),
  busy: () => { banner("The kiosk is busy with another call. Try again in a few minutes.", true); call.cleanup(); },
  error: (m) => {
    banner(m.message, true);
    if (call.state === "idle" && !call.id) { if (!$("call-view").hidden) call.cleanup(); }
  },
};

// ---- start-up ----

async function start() {
  clearInterval(refreshTimer);
  try {
    const health = await api("/api/health");
    $("clinic").textContent = health.clinic.name;
  } catch (_) { /* shown again on the next try */ }
  try {
    const me = await api("/api/users/profile");
    $("who").textContent = me.name;
    if (me.mustChangePassword) {
      signal.close();
      show("password");
      return;
    }
    if (me.twoFactorRequired && !me.twoFactor) {
      signal.close();
      await twoFactorSetup();
      return;
    }
    show("list");
    await loadAppointments();
    refreshTimer = setInterval(() => { if (!call.id) loadAppointments(); }, 5000);
    if (!signal.ws) signal.connect();
  } catch (_) {
    signal.close();
    show("login");
  }
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  const body = { email: $("email").value, password: $("password").value };
  if (!$("code-row").hidden) body.code = $("login-code").value;
  try {
    await api("/api/auth/login", { method: "POST", body: JSON.stringify(body) });
    $("password").value = "";
    $("login-code").value = "";
    $("code-row").hidden = true;
    await start();
  } catch (e) {
    if (e.code === "second_factor_required") {
      // The password was right: ask for the authenticator's code on the same form.
      $("code-row").hidden = false;
      $("login-code").focus();
    }
    $("login-error").textContent = e.message;
  }
});

// ---- two-factor set-up ----

async function twoFactorSetup() {
  show("twofactor");
  $("twofactor-setup").hidden = false;
  $("twofactor-codes").hidden = true;
  $("twofactor-error").textContent = "";
  try {
    const s = await api("/api/auth/2fa/setup", { method: "POST" });
    // The kiosk's own SVG (a path and a rectangle), parsed as an image: no script can run from it.
    $("twofactor-qr").src = `data:image/svg+xml;base64,${btoa(s.qrSvg)}`;
    $("twofactor-secret").textContent = s.secret.replace(/(.{4})/g, "$1 ").trim();
  } catch (e) {
    $("twofactor-error").textContent = e.message;
  }
}

$("twofactor-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("twofactor-error").textContent = "";
  try {
    const r = await api("/api/auth/2fa/confirm", {
      method: "POST",
      body: JSON.stringify({ code: $("twofactor-code").value }),
    });
    $("twofactor-code").value = "";
    const list = $("recovery-codes");
    list.replaceChildren(...r.recoveryCodes.map((c) => {
      const li = document.createElement("li");
      li.textContent = c;
      return li;
    }));
    $("twofactor-setup").hidden = true;
    $("twofactor-codes").hidden = false;
  } catch (e) {
    $("twofactor-error").textContent = e.message;
  }
});

$("twofactor-done").addEventListener("click", () => start());

$("password-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("password-error").textContent = "";
  if ($("new-password").value !== $("repeat-password").value) {
    $("password-error").textContent = "The two new passwords differ.";
    return;
  }
  try {
    await api("/api/auth/password", {
      method: "POST",
      body: JSON.stringify({ currentPassword: $("current-password").value, newPassword: $("new-password").value }),
    });
    for (const id of ["current-password", "new-password", "repeat-password"]) $(id).value = "";
    await start();
  } catch (e) {
    $("password-error").textContent = e.message;
  }
});

$("precheck-open").addEventListener("click", () => precheck.open());
$("precheck").addEventListener("close", () => precheck.close());
$("day-prev").addEventListener("click", () => day.move(-1));
$("day-next").addEventListener("click", () => day.move(1));
$("day-today").addEventListener("click", () => day.go(localDay()));
$("day").addEventListener("change", (ev) => day.go(ev.target.value));
$("notify").addEventListener("click", async () => {
  // Asked only when the doctor wants it (browsers refuse prompts nobody clicked for); the click also lets the
  // page play its chime later.
  chime.ctx = chime.ctx || (window.AudioContext ? new AudioContext() : null);
  if (!window.Notification) {
    $("notify").textContent = "This browser shows no notifications: the page will chime";
  } else {
    const answer = await Notification.requestPermission();
    $("notify").textContent = answer === "granted" ? "You will be told of check-ins" : "Notifications blocked: the page will chime";
  }
  $("notify").disabled = true;
});
$("logout").addEventListener("click", async () => {
  if (call.id) call.end();
  try { await api("/api/auth/logout", { method: "POST" }); } catch (_) { /* the session is gone either way */ }
  start();
});
$("mute").addEventListener("click", (ev) => call.toggle("audio", ev.currentTarget));
$("camera").addEventListener("click", (ev) => call.toggle("video", ev.currentTarget));
$("end").addEventListener("click", () => call.end());
$("share-picture").addEventListener("click", () => $("share-file").click());
$("share-file").addEventListener("change", async (ev) => {
  const file = ev.target.files && ev.target.files[0];
  if (!file) return;
  const isPdf = file.type === "application/pdf" || file.name.toLowerCase().endsWith(".pdf");
  try {
    if (!isPdf) pdf.close();
    const shown = isPdf ? await pdf.open(await file.arrayBuffer()) : await share.showImage(URL.createObjectURL(file));
    if (!shown) banner("It could not be shown: the call is not connected yet.", true);
  } catch (e) {
    banner(isPdf
      ? `The PDF could not be shown (${e.message}). Is it a PDF document that opens elsewhere?`
      : `The picture could not be shown (${e.message}). Choose a PNG or JPEG image, or a PDF.`, true);
  }
  ev.target.value = "";
});
$("share-prev").addEventListener("click", () => pdf.turn(-1));
$("share-next").addEventListener("click", () => pdf.turn(1));
$("share-screen").addEventListener("click", async () => {
  try {
    await share.showScreen();
  } catch (e) {
    banner(`Your screen could not be shared (${e.message}).`, true);
  }
});
$("share-stop").addEventListener("click", () => share.stop());
$("chat-save").addEventListener("click", () => chat.save());
$("followup-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  followUp.book();
});
$("chat-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (chat.send($("chat-text").value)) $("chat-text").value = "";
});

start();
