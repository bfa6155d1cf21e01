// Small DOM helpers shared by the console pages: elements, forms with errors next to their
// field, tables, and the live-region status line.
import { t } from "./i18n.js";

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

let uid = 0;
export function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

/**
 * A labelled field. spec: {name, label, type (text|password|number|checkbox|select|search|tel), options: [[value, text]],
 * value, required, hint, autocomplete}.
 */
export function field(spec) {
  const id = nextId(`f-${spec.name}`);
  const errId = `${id}-error`;
  const hintId = spec.hint ? `${id}-hint` : null;
  let input;
  if (spec.type === "select") {
    input = h("select", { id, name: spec.name, required: spec.required },
      ...(spec.required ? [] : [h("option", { value: "" }, "—")]),
      ...(spec.options || []).map(([value, text]) => h("option", { value: String(value) }, text)));
    if (spec.value !== undefined && spec.value !== null) input.value = String(spec.value);
  } else if (spec.type === "checkbox") {
    input = h("input", { id, name: spec.name, type: "checkbox" });
    input.checked = Boolean(spec.value);
  } else {
    input = h("input", { id, name: spec.name, type: spec.type || "text", required: spec.required, autocomplete: spec.autocomplete || "off",
      inputmode: spec.type === "number" ? "numeric" : undefined });
    if (spec.value !== undefined && spec.value !== null) input.value = String(spec.value);
  }
  input.setAttribute("aria-describedby", [hintId, errId].filter(Boolean).join(" "));
  const label = h("label", { for: id }, spec.label);
  const wrap = h("div", { class: `field field-${spec.type || "text"}${spec.required ? " required" : ""}`, "data-field": spec.name },
    spec.type === "checkbox" ? [input, label] : [label, input],
    hintId ? h("p", { class: "hint", id: hintId }, spec.hint) : null,
    h("p", { class: "field-error", id: errId }));
  return wrap;
}

/** Values of a form's fields: numbers as numbers, empty optional fields left out, checkboxes as booleans. */
export function formValues(form, { keepEmpty = false } = {}) {
  const out = {};
  for (const el of form.querySelectorAll("input, select, textarea")) {
    if (!el.name) continue;
    if (el.type === "checkbox") out[el.name] = el.checked;
    else if (el.value === "" && !keepEmpty) continue;
    else if (el.type === "number" || el.dataset.kind === "integer") out[el.name] = el.value === "" ? null : Number(el.value);
    else out[el.name] = el.value;
  }
  return out;
}

export function clearErrors(form) {
  for (const p of form.querySelectorAll(".field-error")) p.textContent = "";
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const top = form.querySelector(".form-error");
  if (top) top.textContent = "";
}

/** Show an API error next to the field it names (or at the top of the form) and move the focus there. */
export function showError(form, err) {
  const name = err.field ? String(err.field).split(".")[0] : null;
  const wrap = name ? form.querySelector(`[data-field="${CSS.escape(name)}"]`) : null;
  if (wrap) {
    const input = wrap.querySelector("input, select, textarea");
    wrap.querySelector(".field-error").textContent = err.detail || String(err);
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return;
  }
  let top = form.querySelector(".form-error");
  if (!top) {
    top = h("p", { class: "form-error", role: "alert" });
    form.prepend(top);
  }
  top.textContent = err.detail || String(err);
}

export function table(columns, rows, { caption, empty } = {}) {
  if (!rows.length) return h("p", { class: "empty" }, empty || t("empty"));
  return h("table", {},
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", { scope: "col" }, c.label)))),
    h("tbody", {}, ...rows.map((row) => h("tr", {}, ...columns.map((c) => h("td", {}, c.render ? c.render(row) : fmt(row[c.key])))))));
}

export function fmt(value) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "boolean") return value ? t("yes") : t("no");
  if (Array.isArray(value)) return value.join(", ");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export function badge(state) {
  const good = ["ready", "ok", "loaded", "connected", "up", "Connected", "idle", "done", "success"];
  const bad = ["failed", "error", "auth_failed", "config_error", "down", "Disconnected", "disabled"];
  const cls = good.includes(state) ? "good" : bad.includes(state) ? "bad" : "warn";
  return h("span", { class: `badge ${cls}` }, t(`state.${state}`, {}, state));
}

/** Announce a message in the page's polite live region. */
export function announce(message) {
  const region = document.getElementById("status");
  if (region) region.textContent = message;
}
