// The user's Caller page: search the directories, call, follow and control the calls of the
// user's device live (events WebSocket), an incoming-call pop-up named by the reverse lookup,
// and the call log with call-back.
import { api, clearSession, events, session } from "./api.js";
import { applyPageLanguage, setLanguage, t } from "./i18n.js";
import { announce, badge, clearErrors, field, fmt, formValues, h, showError, table } from "./ui.js";

const state = { me: null, calls: [], presence: "idle", forwarding: {}, dnd: false, names: new Map(), popup: null, popupShownAt: 0, timings: [] };
const FORWARD_TYPES = ["immediate", "busy", "no_answer"];
window.__twpPopupTimings = state.timings;  // read by the browser tests and docs/benchmarks.md

async function nameOf(number) {
  if (!number) return null;
  if (state.names.has(number)) return state.names.get(number);
  let name = null;
  try {
    const found = await api("user", "GET", `/api/v1/directories/reverse?number=${encodeURIComponent(number)}`);
    name = found.found && found.contact ? found.contact.name : null;
  } catch {
    name = null;  // a reverse lookup that fails leaves the number alone
  }
  state.names.set(number, name);
  return name;
}

async function act(path, body, form) {
  try {
    await api("user", "POST", path, body || {});
    return true;
  } catch (err) {
    if (form) showError(form, err);
    else showMessage(err.detail || String(err), true);
    return false;
  }
}

function showMessage(text, error) {
  const box = document.getElementById("message");
  box.className = error ? "form-error" : "notice";
  box.textContent = text;
  if (!error) announce(text);
}

async function call(number) {
  const ok = await act("/api/v1/calls", { number });
  if (ok) showMessage(t("call.dialing", { number }));
}

function header() {
  const me = state.me;
  const device = (me.devices || [])[0];
  return h("header", { class: "top" },
    h("p", { class: "brand" }, "TWP ", h("span", {}, "Caller")),
    h("div", { class: "who" },
      h("span", { id: "live", class: "live" }, t("live.connecting")),
      h("span", {}, `${me.first_name || ""} ${me.last_name || ""}`.trim() || me.login),
      device ? h("span", {}, t("app.device"), " ", h("strong", {}, device.number)) : h("span", {}, t("app.nodevice")),
      h("span", { id: "presence" }, badge(state.presence)),
      h("button", { type: "button", onclick: logout }, t("logout"))));
}

async function logout() {
  try {
    await api("user", "POST", "/api/v1/auth/logout");
  } catch {
    // already gone
  }
  clearSession("user");
  location.assign("/");
}

function searchSection() {
  const results = h("div", { id: "results", class: "cards", "aria-live": "polite" });
  const form = h("form", { id: "search-form", role: "search", novalidate: true },
    field({ name: "q", label: t("search.label"), type: "search", hint: t("search.hint") }),
    h("button", { type: "submit", class: "primary" }, t("search.submit")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const { q = "" } = formValues(form);
    if (!q.trim()) {
      showError(form, { field: "q", detail: t("search.empty") });
      return;
    }
    try {
      const found = await api("user", "GET", `/api/v1/directories/search?q=${encodeURIComponent(q)}&limit=50`);
      results.replaceChildren(...(found.items.length ? found.items.map(card) : [h("p", { class: "empty" }, t("search.none", { q }))]));
      announce(t("search.count", { n: found.items.length }));
    } catch (err) {
      showError(form, err);
    }
  });
  return h("section", { class: "card wide", "aria-labelledby": "h-search" }, h("h2", { id: "h-search" }, t("search.title")), form, results);
}

function card(contact) {
  return h("article", { class: "contact", "aria-label": contact.name },
    h("h3", {}, contact.name || "—"),
    contact.company ? h("p", {}, contact.company) : null,
    contact.email ? h("p", {}, h("a", { href: `mailto:${contact.email}` }, contact.email)) : null,
    h("p", { class: "source" }, contact.directory),
    h("ul", { class: "numbers" }, ...(contact.numbers || []).map((n) => h("li", {},
      h("span", { class: "ntype" }, t(`number.${n.type}`, {}, n.type)), " ",
      h("button", { type: "button", class: "call", onclick: () => call(n.number), "aria-label": t("call.to", { name: contact.name, number: n.number }) },
        n.number)))));
}

function dialSection() {
  const form = h("form", { id: "dial-form", novalidate: true },
    field({ name: "number", label: t("dial.number"), type: "tel", autocomplete: "tel" }),
    h("button", { type: "submit", class: "primary" }, t("dial.call")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const { number = "" } = formValues(form);
    if (!number.trim()) {
      showError(form, { field: "number", detail: t("dial.empty") });
      return;
    }
    if (await act("/api/v1/calls", { number }, form)) showMessage(t("call.dialing", { number }));
  });
  return h("section", { class: "card", "aria-labelledby": "h-dial" }, h("h2", { id: "h-dial" }, t("dial.title")), form);
}

function callsSection() {
  return h("section", { class: "card", "aria-labelledby": "h-calls" }, h("h2", { id: "h-calls" }, t("calls.title")), h("div", { id: "calls" }));
}

function numberPrompt(label, onSubmit) {
  const form = h("form", { class: "inline", novalidate: true }, field({ name: "number", label, type: "tel" }),
    h("button", { type: "submit" }, t("ok")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const { number = "" } = formValues(form);
    if (!number.trim()) {
      showError(form, { field: "number", detail: t("dial.empty") });
      return;
    }
    await onSubmit(number, form);
  });
  return form;
}

function callButtons(c, box) {
  const id = encodeURIComponent(c.call_id);
  const base = `/api/v1/calls/${id}`;
  const other = state.calls.find((o) => o.call_id !== c.call_id && o.state === "connected");
  const b = (label, fn, cls) => h("button", { type: "button", class: cls, onclick: fn }, label);
  const prompt = (label, path, key = "number") => () => {
    const slot = box.querySelector(".prompt");
    slot.replaceChildren(numberPrompt(label, async (value, form) => {
      if (await act(path, { [key]: value }, form)) slot.replaceChildren();
    }));
    slot.querySelector("input").focus();
  };
  const out = [];
  if (c.state === "alerting" && c.direction === "incoming") {
    out.push(b(t("call.answer"), () => act(`${base}/answer`), "good"), b(t("call.deflect"), prompt(t("call.deflect.to"), `${base}/deflect`)));
  }
  if (c.state === "connected") {
    out.push(b(t("call.hold"), () => act(`${base}/hold`)), b(t("call.transfer"), prompt(t("call.transfer.to"), `${base}/blind-transfer`)),
      b(t("call.consult"), prompt(t("call.consult.to"), `${base}/consult`)), b(t("call.dtmf"), prompt(t("call.dtmf.digits"), `${base}/dtmf`, "digits")));
  }
  if (c.state === "held") {
    out.push(b(t("call.retrieve"), () => act(`${base}/retrieve`)));
    if (other) {
      const pair = { other_call_id: other.call_id };
      out.push(b(t("call.complete"), () => act(`${base}/transfer`, pair)), b(t("call.alternate"), () => act(`${base}/alternate`, pair)),
        b(t("call.conference"), () => act(`${base}/conference`, pair)), b(t("call.reconnect"), () => act(`${base}/reconnect`, pair)));
    }
  }
  out.push(b(t("call.hangup"), () => act(`${base}/hangup`), "danger"));
  return out;
}

async function drawCalls() {
  const box = document.getElementById("calls");
  if (!box) return;
  if (!state.calls.length) {
    box.replaceChildren(h("p", { class: "empty" }, t("calls.none")));
    return;
  }
  const items = await Promise.all(state.calls.map(async (c) => {
    const name = c.name || await nameOf(c.remote);
    const item = h("article", { class: `call-item ${c.state}`, "data-call": c.call_id, "aria-label": t("calls.with", { who: name || c.remote || "?" }) },
      h("h3", {}, name || c.remote || "?", name ? h("span", { class: "num" }, ` ${c.remote}`) : null),
      h("p", {}, t(`callstate.${c.state}`, {}, c.state), " · ", t(`direction.${c.direction}`, {}, c.direction || "")),
      h("div", { class: "prompt" }));
    item.insertBefore(h("div", { class: "actions" }, ...callButtons(c, item)), item.lastChild);
    return item;
  }));
  box.replaceChildren(...items);
}

async function refreshCalls() {
  const askedAt = performance.now();
  try {
    const snap = await api("user", "GET", "/api/v1/calls");
    state.calls = snap.items || [];
    state.presence = snap.presence || "idle";
    state.forwarding = snap.forwarding || {};
    state.dnd = Boolean(snap.do_not_disturb);
  } catch (err) {
    state.calls = [];
    state.presence = err.status === 409 || err.status === 503 ? "unavailable" : state.presence;
  }
  const p = document.getElementById("presence");
  if (p) p.replaceChildren(badge(state.presence));
  await drawCalls();
  drawForwarding();
  // Close the pop-up once a snapshot asked for after it opened no longer shows its call ringing
  // (an older answer, still on its way when the call arrived, must not close it).
  if (state.popup && askedAt > state.popupShownAt
      && !state.calls.some((c) => c.call_id === state.popup.dataset.call && c.state === "alerting")) closePopup();
}

function closePopup() {
  if (state.popup) {
    state.popup.remove();
    state.popup = null;
  }
}

/** The incoming-call pop-up, shown as soon as the event arrives; the reverse-lookup name fills in when known. */
function showPopup(c, receivedAt) {
  closePopup();
  const nameEl = h("p", { class: "caller", id: "popup-caller" }, c.name || c.remote || "?");
  const answer = h("button", { type: "button", class: "good", onclick: async () => { await act(`/api/v1/calls/${encodeURIComponent(c.call_id)}/answer`); closePopup(); } }, t("call.answer"));
  const dialog = h("div", { class: "popup", role: "alertdialog", "aria-labelledby": "popup-title", "aria-describedby": "popup-caller", "data-call": c.call_id },
    h("h2", { id: "popup-title" }, t("popup.title")), nameEl, h("p", { class: "num", id: "popup-number" }, c.remote || ""),
    h("div", { class: "actions" }, answer,
      h("button", { type: "button", class: "danger", onclick: async () => { await act(`/api/v1/calls/${encodeURIComponent(c.call_id)}/hangup`); closePopup(); } }, t("call.reject")),
      h("button", { type: "button", onclick: closePopup }, t("close"))));
  dialog.addEventListener("keydown", (ev) => { if (ev.key === "Escape") closePopup(); });
  document.body.append(dialog);
  state.popup = dialog;
  state.popupShownAt = performance.now();
  answer.focus();
  state.timings.push({ call_id: c.call_id, shown_ms: performance.now() - receivedAt });
  if (!c.name) {
    nameOf(c.remote).then((name) => {
      if (name && state.popup === dialog) {
        nameEl.textContent = name;
        dialog.dataset.named = "true";
      }
    });
  }
}

/** Forwarding (immediate, busy, no answer) and do-not-disturb of the user's phone (user guide 4.3). */
function forwardingSection() {
  const form = h("form", { id: "forward-form", novalidate: true },
    field({ name: "type", label: t("fwd.type"), type: "select", required: true, options: FORWARD_TYPES.map((f) => [f, t(`fwd.${f}`)]) }),
    field({ name: "number", label: t("fwd.number"), type: "tel" }),
    h("button", { type: "submit", class: "primary" }, t("fwd.set")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const { type, number = "" } = formValues(form);
    if (!number.trim()) {
      showError(form, { field: "number", detail: t("dial.empty") });
      return;
    }
    try {
      await api("user", "PUT", "/api/v1/devices/forwarding", { type, number });
      showMessage(t("fwd.done"));
      await refreshCalls();
    } catch (err) {
      showError(form, err);
    }
  });
  const dnd = h("input", { type: "checkbox", id: "dnd", name: "dnd" });
  dnd.addEventListener("change", async () => {
    try {
      await api("user", "PUT", "/api/v1/devices/do-not-disturb", { on: dnd.checked });
      showMessage(t("dnd.done"));
    } catch (err) {
      dnd.checked = !dnd.checked;
      showMessage(err.detail || String(err), true);
    }
  });
  return h("section", { class: "card", "aria-labelledby": "h-fwd" }, h("h2", { id: "h-fwd" }, t("fwd.title")),
    h("div", { id: "forwarding" }), form, h("div", { class: "field field-checkbox" }, dnd, h("label", { for: "dnd" }, t("dnd.label"))));
}

function drawForwarding() {
  const box = document.getElementById("forwarding");
  if (!box) return;
  const dnd = document.getElementById("dnd");
  if (dnd) dnd.checked = state.dnd;
  const set = FORWARD_TYPES.filter((f) => state.forwarding[f]);
  box.replaceChildren(set.length ? h("ul", { class: "forwards" }, ...set.map((f) => h("li", {},
    t("fwd.current", { type: t(`fwd.${f}`), number: state.forwarding[f] }), " ",
    h("button", { type: "button", onclick: async () => {
      try {
        await api("user", "PUT", "/api/v1/devices/forwarding", { type: f, number: null });
        await refreshCalls();
      } catch (err) {
        showMessage(err.detail || String(err), true);
      }
    } }, t("fwd.cancel"))))) : h("p", { class: "empty" }, t("fwd.none")));
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
}

/** Statistics (the Stats application, user guide 5): totals and a bar chart of answered and missed calls per period. */
function statsSection() {
  const form = h("form", { id: "stats-form", class: "inline", novalidate: true },
    field({ name: "group_by", label: t("stats.by"), type: "select", required: true, value: "day",
      options: [["hour", t("stats.hour")], ["day", t("stats.day")], ["weekday", t("stats.weekday")], ["month", t("stats.month")]] }),
    h("button", { type: "submit" }, t("refresh")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    drawStats();
  });
  form.querySelector("select").addEventListener("change", drawStats);
  return h("section", { class: "card wide", "aria-labelledby": "h-stats" }, h("h2", { id: "h-stats" }, t("stats.title")), form, h("div", { id: "stats" }));
}

async function drawStats() {
  const box = document.getElementById("stats");
  if (!box) return;
  const by = document.querySelector("#stats-form select").value;
  const tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  try {
    const st = await api("user", "GET", `/api/v1/me/statistics?group_by=${by}&tz=${encodeURIComponent(tz)}`);
    const periods = st.periods || [];
    const tot = st.totals;
    const totals = h("dl", { class: "totals" },
      h("dt", {}, t("stats.calls")), h("dd", { id: "stats-calls" }, tot.calls),
      h("dt", {}, t("outcome.answered")), h("dd", {}, tot.answered), h("dt", {}, t("outcome.missed")), h("dd", {}, tot.missed),
      h("dt", {}, t("stats.mean")), h("dd", {}, tot.mean_duration === null ? "—" : `${Math.round(tot.mean_duration)} s`));
    if (!periods.length) {
      box.replaceChildren(totals, h("p", { class: "empty" }, t("log.empty")));
      return;
    }
    const width = 640, height = 180, pad = 28;
    const max = Math.max(1, ...periods.map((p) => p.answered + p.missed));
    const bw = Math.max(4, Math.min(40, (width - pad) / periods.length - 4));
    const label = (p) => p.period.length > 13 ? p.period.slice(11, 16) : p.period.slice(0, 10);
    const bars = periods.map((p, i) => {
      const x = pad + i * ((width - pad) / periods.length) + 2;
      const ha = ((height - pad) * p.answered) / max, hm = ((height - pad) * p.missed) / max;
      return svg("g", {},
        svg("rect", { x, y: height - pad - ha, width: bw, height: ha, fill: "#17663a" }),
        svg("rect", { x, y: height - pad - ha - hm, width: bw, height: hm, fill: "#a4161a" }),
        svg("text", { x: x + bw / 2, y: height - 10, "text-anchor": "middle", "font-size": 10, fill: "#1b1f24" }, label(p)));
    });
    const summary = t("stats.summary", { calls: tot.calls, answered: tot.answered, missed: tot.missed, n: periods.length });
    const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": summary, class: "chart", id: "stats-chart" },
      svg("line", { x1: pad, y1: height - pad, x2: width, y2: height - pad, stroke: "#4a5562" }),
      svg("text", { x: 2, y: 12, "font-size": 10, fill: "#1b1f24" }, String(max)), ...bars);
    box.replaceChildren(totals, h("p", { class: "legend" }, h("span", { class: "key answered" }), t("outcome.answered"), " ",
      h("span", { class: "key missed" }), t("outcome.missed")), chart,
      h("details", {}, h("summary", {}, t("stats.table")), table([{ label: t("stats.period"), key: "period" }, { label: t("stats.calls"), key: "calls" },
        { label: t("outcome.answered"), key: "answered" }, { label: t("outcome.missed"), key: "missed" }], periods)));
  } catch (err) {
    box.replaceChildren(h("p", { class: "form-error" }, err.detail || String(err)));
  }
}

function logSection() {
  return h("section", { class: "card wide", "aria-labelledby": "h-log" }, h("h2", { id: "h-log" }, t("log.title")),
    h("p", {}, h("button", { type: "button", onclick: drawLog }, t("refresh"))), h("div", { id: "log" }));
}

async function drawLog() {
  const box = document.getElementById("log");
  try {
    const page = await api("user", "GET", "/api/v1/me/call-logs?limit=20");
    box.replaceChildren(table([
      { label: t("log.when"), render: (e) => new Date(e.started_at).toLocaleString(document.documentElement.lang) },
      { label: t("log.direction"), render: (e) => t(`direction.${e.direction}`, {}, e.direction) },
      { label: t("log.who"), render: (e) => e.name ? `${e.name} (${e.number})` : fmt(e.number) },
      { label: t("log.outcome"), render: (e) => t(`outcome.${e.outcome}`, {}, e.outcome) },
      { label: t("log.duration"), render: (e) => `${Math.round(e.duration || 0)} s` },
      { label: t("col.actions"), render: (e) => e.number ? h("button", { type: "button", class: "call", onclick: () => call(e.number),
        "aria-label": t("log.callback", { number: e.number }) }, t("log.callbackShort")) : "—" },
    ], page.items, { caption: t("log.title"), empty: t("log.empty") }));
  } catch (err) {
    box.replaceChildren(h("p", { class: "form-error" }, err.detail || String(err)));
  }
}

async function start() {
  applyPageLanguage();
  if (!session("user")) {
    location.assign("/");
    return;
  }
  state.me = await api("user", "GET", "/api/v1/me");
  if (state.me.culture) setLanguage(state.me.culture);
  document.getElementById("root").replaceChildren(header(),
    h("main", { id: "main", tabindex: "-1" }, h("h1", { class: "visually-hidden" }, "Caller"),
      h("p", { id: "message", class: "notice", role: "status" }),
      h("div", { class: "grid" }, searchSection(), dialSection(), callsSection(), forwardingSection(), logSection(),
        (state.me.applications || []).includes("Stats") ? statsSection() : null)));
  let logTimer = null;
  events("user", (ev) => {
    const receivedAt = performance.now();
    if (!ev.type.startsWith("call.") && !ev.type.startsWith("device.") && ev.type !== "presence.changed") return;
    const c = ev.data && ev.data.call;
    if (ev.type === "call.delivered" && c && c.state === "alerting" && c.direction === "incoming") showPopup(c, receivedAt);
    refreshCalls();
    if (ev.type === "call.cleared") {
      clearTimeout(logTimer);
      logTimer = setTimeout(() => { drawLog(); drawStats(); }, 800);  // the call log entry is written just after the call ends
    }
  }, (s) => {
    const el = document.getElementById("live");
    if (el) {
      el.textContent = t(`live.${s}`);
      el.className = `live ${s}`;
    }
    if (s === "open") refreshCalls();
  });
  await Promise.all([refreshCalls(), drawLog(), drawStats()]);
}

start().catch((err) => {
  document.getElementById("main").replaceChildren(h("p", { class: "form-error", role: "alert" }, err.detail || String(err)));
});
