// The API explorer: /api/v1/openapi.json rendered as a reference grouped by tag, each operation
// with its parameters, body schema, answers and a "try it" form that sends the request with the
// token of this tab's admin or user session (or one pasted in).
import { session } from "./api.js";
import { applyPageLanguage, t } from "./i18n.js";
import { field, h } from "./ui.js";

function token() {
  const input = document.querySelector(".token-field input[name=token]");
  if (input && input.value) return input.value.trim();
  const s = session("admin") || session("user");
  return s ? s.token : "";
}

function schemaText(schema) {
  return JSON.stringify(schema, null, 2);
}

function tryForm(method, path, op) {
  const params = op.parameters || [];
  const form = h("form", { class: "try", novalidate: true },
    ...params.map((p) => field({ name: `${p.in}:${p.name}`, label: `${p.name} (${p.in})${p.required ? " *" : ""}`, hint: p.description })),
    op.requestBody ? h("div", { class: "field" }, h("label", { for: `body-${op.operationId}` }, t("docs.body")),
      h("textarea", { id: `body-${op.operationId}`, name: "body", rows: 5, spellcheck: "false" }, "{}")) : null,
    h("button", { type: "submit", class: "primary" }, t("docs.send")),
    h("pre", { class: "answer", "aria-live": "polite" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    let url = path;
    const query = new URLSearchParams();
    for (const p of params) {
      const value = form.querySelector(`[name="${CSS.escape(`${p.in}:${p.name}`)}"]`).value;
      if (p.in === "path") url = url.replace(`{${p.name}}`, encodeURIComponent(value));
      else if (value !== "") query.set(p.name, value);
    }
    if ([...query].length) url += `?${query}`;
    const headers = { Accept: "application/json" };
    if (token()) headers.Authorization = `Bearer ${token()}`;
    const init = { method: method.toUpperCase(), headers };
    const body = form.querySelector("textarea[name=body]");
    if (body) {
      headers["Content-Type"] = "application/json";
      init.body = body.value;
    }
    const out = form.querySelector(".answer");
    try {
      const resp = await fetch(url, init);
      const text = await resp.text();
      let pretty = text;
      try { pretty = JSON.stringify(JSON.parse(text), null, 2); } catch { /* not JSON */ }
      out.textContent = `${resp.status} ${resp.statusText}\n${pretty}`;
    } catch (err) {
      out.textContent = String(err);
    }
  });
  return form;
}

function operation(method, path, op) {
  const responses = Object.entries(op.responses || {});
  const details = h("details", { class: "op", id: op.operationId },
    h("summary", {}, h("span", { class: `method ${method}` }, method.toUpperCase()), " ", h("code", {}, path), " — ", op.summary,
      op["x-twp-access"] ? h("span", { class: "access" }, ` [${op["x-twp-access"]}]`) : null));
  // The body of an operation is built when first opened: the page stays light with 170+ operations.
  details.addEventListener("toggle", () => {
    if (!details.open || details.dataset.built) return;
    details.dataset.built = "true";
    details.append(
      h("div", {},
        (op["x-twp-rules"] || []).length ? h("ul", { class: "rules" }, ...op["x-twp-rules"].map((r) => h("li", {}, r))) : null,
        op.requestBody ? [h("h3", {}, t("docs.body")), h("pre", {}, schemaText(op.requestBody.content["application/json"].schema))] : null,
        h("h3", {}, t("docs.responses")),
        h("ul", {}, ...responses.map(([code, r]) => h("li", {}, h("code", {}, code), " ", r.description))),
        h("h3", {}, t("docs.try")), tryForm(method, path, op)));
  });
  return details;
}

async function start() {
  applyPageLanguage();
  const doc = await (await fetch("/api/v1/openapi.json")).json();
  const byTag = new Map();
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const tag = (op.tags || ["other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push([method, path, op]);
    }
  }
  const tags = [...byTag.keys()].sort();
  const filter = h("input", { id: "filter", type: "search", "aria-describedby": "filter-hint" });
  const sections = tags.map((tag) => h("section", { class: "tag", "aria-labelledby": `tag-${tag}`, "data-tag": tag },
    h("h2", { id: `tag-${tag}` }, tag), ...byTag.get(tag).map(([m, p, op]) => operation(m, p, op))));
  filter.addEventListener("input", () => {
    const q = filter.value.toLowerCase();
    for (const d of document.querySelectorAll("details.op")) d.hidden = q && !d.querySelector("summary").textContent.toLowerCase().includes(q);
  });
  document.getElementById("root").replaceChildren(
    h("header", { class: "top" }, h("p", { class: "brand" }, "TWP ", h("span", {}, t("docs.title"))),
      h("div", { class: "who" }, h("a", { href: "/" }, t("nav.login")), h("a", { href: "/api/v1/openapi.json" }, "openapi.json"))),
    h("main", { id: "main", tabindex: "-1" },
      h("h1", {}, `${doc.info.title} ${doc.info.version}`),
      h("p", {}, doc.info.description),
      h("div", { class: "card" },
        h("div", { class: "field" }, h("label", { for: "filter" }, t("docs.filter")), filter, h("p", { class: "hint", id: "filter-hint" }, t("docs.filter.hint"))),
        field({ name: "token", label: t("docs.token"), type: "password", hint: t("docs.token.hint") })),
      h("nav", { "aria-label": t("docs.tags") }, h("ul", { class: "tags" }, ...tags.map((tag) => h("li", {}, h("a", { href: `#tag-${tag}` }, tag))))),
      ...sections));
  document.querySelector("[data-field=token]").classList.add("token-field");
}

start();
