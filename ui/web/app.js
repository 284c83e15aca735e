// Doctor's web app: log in, see today's appointments with their live status. Calls arrive with the signaling work.
"use strict";

const $ = (id) => document.getElementById(id);

async function api(path, options = {}) {
  const res = await fetch(path, {
    credentials: "same-origin",
    headers: options.body ? { "Content-Type": "application/json" } : {},
    ...options,
  });
  const text = await res.text();
  const body = text ? JSON.parse(text) : null;
  if (!res.ok) {
    const err = new Error(body && body.message ? body.message : `HTTP ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return body;
}

function localDay(d = new Date()) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

function show(view) {
  $("login-view").hidden = view !== "login";
  $("list-view").hidden = view !== "list";
  $("logout").hidden = view !== "list";
  $("who").hidden = view !== "list";
}

let refreshTimer = null;

async function loadAppointments() {
  try {
    const day = localDay();
    $("today").textContent = day;
    const data = await api(`/api/appointments?day=${day}`);
    const rows = $("appointments");
    rows.replaceChildren();
    for (const a of data.appointments) {
      const tr = document.createElement("tr");
      const time = new Date(a.startsAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      for (const [text, cls] of [[time], [a.patientName], [a.reason], [a.status.replace("_", " "), `status ${a.status}`]]) {
        const td = document.createElement("td");
        td.textContent = text;
        if (cls) td.className = cls;
        tr.append(td);
      }
      tr.dataset.id = a.id;
      rows.append(tr);
    }
    $("empty").hidden = data.appointments.length > 0;
    $("list-error").textContent = "";
  } catch (e) {
    if (e.status === 401) return start();
    $("list-error").textContent = `Could not load appointments: ${e.message}`;
  }
}

async function start() {
  clearInterval(refreshTimer);
  try {
    const health = await api("/api/health");
    $("clinic").textContent = health.clinic.name;
  } catch (_) { /* shown again on the next try */ }
  try {
    const me = await api("/api/users/profile");
    $("who").textContent = me.name;
    show("list");
    await loadAppointments();
    refreshTimer = setInterval(loadAppointments, 15000);
  } catch (_) {
    show("login");
  }
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  try {
    await api("/api/auth/login", {
      method: "POST",
      body: JSON.stringify({ email: $("email").value, password: $("password").value }),
    });
    $("password").value = "";
    await start();
  } catch (e) {
    $("login-error").textContent = e.message;
  }
});

$("logout").addEventListener("click", async () => {
  try { await api("/api/auth/logout", { method: "POST" }); } catch (_) { /* the session is gone either way */ }
  start();
});

start();
