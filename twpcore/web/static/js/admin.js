// The admin console: a dashboard that follows the events WebSocket, and pages for companies,
// domains, users, devices and groups whose forms are built from the OpenAPI document, so a
// field the API gains shows up here and every rule the API checks is the one the form reports.
import { api, clearSession, events, session } from "./api.js";
import { applyPageLanguage, t } from "./i18n.js";
import { badge, clearErrors, field, fmt, formValues, h, showError, table } from "./ui.js";

const RESOURCES = {
  companies: { columns: ["id", "name", "description"], fields: ["name", "description"] },
  domains: { columns: ["id", "company_id", "name", "numbering_plan_length"], fields: ["company_id", "name", "numbering_plan_length"] },
  users: {
    columns: ["id", "domain_id", "login", "first_name", "last_name", "email", "culture", "enabled", "password_set"],
    fields: ["domain_id", "login", "first_name", "last_name", "email", "mobile", "culture", "password", "enabled"],
  },
  devices: { columns: ["id", "domain_id", "number", "user_id", "protocol", "site"], fields: ["domain_id", "number", "user_id", "protocol", "site", "password"] },
  groups: { columns: ["id", "domain_id", "name", "priority", "description"], fields: ["domain_id", "name", "priority", "description"] },
};
const PAGES = ["dashboard", ...Object.keys(RESOURCES), "authorizations", "directories"];
const OBJECT_TYPES = ["application", "directory", "calendar", "intercom_group", "phone_queue", "call_log", "statistics", "records"];
const APPLICATIONS = ["Caller", "Alerter", "Stats", "StatsAdmin", "Rules", "SoftPhone", "Toolkit", "Internet", "Mail", "VideoShare", "SmartAttendant"];
const LABEL_OF = { companies: (o) => o.name, domains: (o) => o.name, users: (o) => `${o.login} (${[o.first_name, o.last_name].filter(Boolean).join(" ")})`,
  devices: (o) => o.number, groups: (o) => o.name, directories: (o) => o.name };

let openapi = null;
let live = null;
let refreshDashboard = null;

async function document_() {
  if (!openapi) openapi = await api("admin", "GET", "/api/v1/openapi.json");
  return openapi;
}

function schemaOf(doc, path, method) {
  const op = doc.paths[path] && doc.paths[path][method];
  return op && op.requestBody ? op.requestBody.content["application/json"].schema : { properties: {}, required: [] };
}

async function listAll(resource) {
  const page = await api("admin", "GET", `/api/v1/${resource}?limit=1000`);
  return page.items;
}

/** id -> label of every object a reference field may name. */
async function refLabels(resources) {
  const out = {};
  await Promise.all(resources.map(async (r) => {
    const items = await listAll(r);
    out[r] = new Map(items.map((o) => [o.id, LABEL_OF[r](o)]));
  }));
  return out;
}

function frame(page, content) {
  const s = session("admin");
  const nav = h("nav", { "aria-label": t("nav.main") }, h("ul", {}, ...PAGES.map((p) => h("li", {},
    h("a", { href: `#/${p}`, "aria-current": p === page ? "page" : null }, t(`nav.${p}`))))));
  const header = h("header", { class: "top" },
    h("p", { class: "brand" }, "TWP ", h("span", {}, t("admin.title"))),
    nav,
    h("div", { class: "who" },
      h("span", { id: "live", class: "live" }, t("live.connecting")),
      h("span", {}, s.admin.login),
      h("a", { href: "/docs" }, t("nav.docs")),
      h("button", { type: "button", onclick: logout }, t("logout"))));
  const main = h("main", { id: "main", tabindex: "-1" }, content);
  document.getElementById("root").replaceChildren(header, main);
  return main;
}

async function logout() {
  try {
    await api("admin", "POST", "/api/v1/auth/logout");
  } catch {
    // the token may already be gone; the tab forgets it either way
  }
  clearSession("admin");
  location.assign("/?as=admin");
}

function setLive(state) {
  const el = document.getElementById("live");
  if (el) {
    el.textContent = t(`live.${state}`);
    el.className = `live ${state}`;
  }
}

async function dashboard() {
  const main = frame("dashboard", h("h1", {}, t("nav.dashboard")));
  const body = h("div", { class: "grid" });
  main.append(body);
  if (new URLSearchParams(location.hash.split("?")[1] || "").get("changed")) {
    main.insertBefore(h("p", { class: "notice", role: "status" }, t("change.done")), body);
  }
  const draw = async () => {
    const [health, links, plugins, directories] = await Promise.all([
      api("admin", "GET", "/api/v1/health"), api("admin", "GET", "/api/v1/links"),
      api("admin", "GET", "/api/v1/plugins"), api("admin", "GET", "/api/v1/directories?limit=1000")]);
    const instances = plugins.instances || [];
    const sms = instances.filter((i) => i.kind === "sms_provider");
    const failed = (plugins.plugins || []).filter((p) => p.state !== "loaded");
    body.replaceChildren(
      h("section", { class: "card", "aria-labelledby": "h-health" }, h("h2", { id: "h-health" }, t("dash.health")),
        h("dl", {},
          h("dt", {}, t("dash.status")), h("dd", { id: "health-status" }, badge(health.status)),
          h("dt", {}, t("dash.ready")), h("dd", {}, fmt(health.ready)),
          h("dt", {}, t("dash.uptime")), h("dd", {}, `${Math.round(health.uptime)} s`),
          h("dt", {}, t("dash.plugins")), h("dd", {}, `${health.plugins.total} (${t("dash.failed")}: ${health.plugins.failed})`)),
        (health.warnings || []).length
          ? h("ul", { class: "warnings", "aria-label": t("dash.warnings") }, ...health.warnings.map((w) => h("li", {}, typeof w === "string" ? w : w.detail || JSON.stringify(w))))
          : h("p", {}, t("dash.nowarnings"))),
      h("section", { class: "card wide", "aria-labelledby": "h-links" }, h("h2", { id: "h-links" }, t("dash.links")),
        table([{ label: t("col.name"), key: "name" }, { label: t("col.driver"), key: "driver" }, { label: t("col.domain"), key: "domain" },
          { label: t("col.address"), render: (l) => `${l.host}:${l.port}` },
          { label: t("col.state"), render: (l) => badge(l.connected ? "connected" : "down") },
          { label: t("col.load"), render: (l) => `${l.current} / ${l.count}` }, { label: t("col.reason"), key: "last_error" }], links.items, { empty: t("dash.nolinks") })),
      h("section", { class: "card wide", "aria-labelledby": "h-dirs" }, h("h2", { id: "h-dirs" }, t("dash.directories")),
        table([{ label: t("col.name"), key: "name" }, { label: t("col.connector"), key: "connector" }, { label: t("col.type"), key: "type" },
          { label: t("col.state"), render: (d) => badge(d.state || "unknown") }, { label: t("col.contacts"), key: "contacts" },
          { label: t("col.reason"), render: (d) => fmt(d.reason || d.last_error) }], directories.items, { empty: t("dash.nodirs") })),
      h("section", { class: "card wide", "aria-labelledby": "h-inst" }, h("h2", { id: "h-inst" }, t("dash.instances")),
        table([{ label: t("col.kind"), key: "kind" }, { label: t("col.name"), key: "name" }, { label: t("col.plugin"), key: "plugin" },
          { label: t("col.state"), render: (i) => badge(i.state) }, { label: t("col.reason"), key: "reason" }], instances)),
      h("section", { class: "card", "aria-labelledby": "h-sms" }, h("h2", { id: "h-sms" }, t("dash.sms")),
        table([{ label: t("col.name"), key: "name" }, { label: t("col.type"), key: "type" }, { label: t("col.state"), render: (i) => badge(i.state) },
          { label: t("col.reason"), key: "reason" }], sms, { empty: t("dash.nosms") })),
      failed.length ? h("section", { class: "card", "aria-labelledby": "h-failed" }, h("h2", { id: "h-failed" }, t("dash.failedplugins")),
        table([{ label: t("col.name"), key: "name" }, { label: t("col.state"), render: (p) => badge(p.state) }, { label: t("col.reason"), key: "reason" }], failed)) : null);
  };
  let pending = null;
  refreshDashboard = () => {
    clearTimeout(pending);
    pending = setTimeout(() => draw().catch(console.error), 250);
  };
  await draw();
}

async function resourcePage(name) {
  const conf = RESOURCES[name];
  const doc = await document_();
  const createSchema = schemaOf(doc, `/api/v1/${name}`, "post");
  const refs = [...new Set(conf.fields.map((f) => (createSchema.properties[f] || {})["x-twp-ref"]).filter(Boolean))];
  const [items, labels] = await Promise.all([listAll(name), refLabels(refs)]);
  const main = frame(name, h("h1", {}, t(`nav.${name}`)));
  const formArea = h("div", { id: "form-area" });
  const columns = conf.columns.map((key) => {
    const ref = (createSchema.properties[key] || {})["x-twp-ref"];
    return { label: t(`col.${key}`, {}, key), render: ref ? (o) => fmt(labels[ref].get(o[key]) ?? o[key]) : (o) => fmt(o[key]) };
  });
  columns.push({ label: t("col.actions"), render: (o) => h("div", { class: "actions" },
    h("button", { type: "button", onclick: () => editForm(name, o, formArea), "aria-label": `${t("edit")} ${LABEL_OF[name](o)}` }, t("edit")),
    name === "groups" ? h("button", { type: "button", onclick: () => membersPanel(o, formArea), "aria-label": `${t("members")} ${o.name}` }, t("members")) : null,
    h("button", { type: "button", class: "danger", onclick: () => remove(name, o), "aria-label": `${t("delete")} ${LABEL_OF[name](o)}` }, t("delete"))) });
  main.append(
    h("p", {}, h("button", { type: "button", class: "primary", id: "new-button", onclick: () => createForm(name, formArea) }, t(`new.${name}`))),
    formArea,
    h("section", { "aria-labelledby": "h-list" }, h("h2", { id: "h-list" }, t("list"), ` (${items.length})`),
      table(columns, items, { caption: t(`nav.${name}`) })));
}

async function fieldsFor(name, schema, values) {
  const conf = RESOURCES[name];
  const refs = [...new Set(conf.fields.map((f) => (schema.properties[f] || {})["x-twp-ref"]).filter(Boolean))];
  const labels = await refLabels(refs);
  return conf.fields.filter((f) => schema.properties[f]).map((f) => {
    const prop = schema.properties[f];
    const types = Array.isArray(prop.type) ? prop.type : [prop.type];
    const required = (schema.required || []).includes(f);
    const spec = { name: f, label: t(`col.${f}`, {}, f), required, value: values ? values[f] : undefined,
      hint: prop.description ? t(`hint.${name}.${f}`, {}, prop.description) : undefined };
    if (prop["x-twp-ref"]) Object.assign(spec, { type: "select", options: [...labels[prop["x-twp-ref"]].entries()] });
    else if (types.includes("boolean")) Object.assign(spec, { type: "checkbox", value: values ? values[f] : true });
    else if (types.includes("integer")) spec.type = "number";
    else if (f.includes("password")) Object.assign(spec, { type: "password", autocomplete: "new-password" });
    return field(spec);
  });
}

function refNumbers(form, schema) {
  for (const el of form.querySelectorAll("select")) {
    if (schema.properties[el.name] && schema.properties[el.name]["x-twp-ref"]) el.dataset.kind = "integer";
  }
}

async function createForm(name, area) {
  const doc = await document_();
  const schema = schemaOf(doc, `/api/v1/${name}`, "post");
  const form = h("form", { id: `create-${name}`, novalidate: true, "aria-labelledby": "form-title" },
    ...(await fieldsFor(name, schema)),
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, t("create")),
      h("button", { type: "button", onclick: () => area.replaceChildren() }, t("cancel"))));
  refNumbers(form, schema);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    try {
      const obj = await api("admin", "POST", `/api/v1/${name}`, formValues(form));
      sessionStorage.setItem("twp.console.flash", t("created", { what: LABEL_OF[name](obj) }));
      await route();
    } catch (err) {
      showError(form, err);
    }
  });
  area.replaceChildren(h("section", { class: "card form" }, h("h2", { id: "form-title" }, t(`new.${name}`)), form));
  form.querySelector("input, select").focus();
}

async function editForm(name, obj, area) {
  const doc = await document_();
  const schema = schemaOf(doc, `/api/v1/${name}/{id}`, "patch");
  const form = h("form", { id: `edit-${name}`, novalidate: true, "aria-labelledby": "form-title" },
    ...(await fieldsFor(name, { ...schema, required: [] }, obj)),
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, t("save")),
      h("button", { type: "button", onclick: () => area.replaceChildren() }, t("cancel"))));
  refNumbers(form, schema);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const values = formValues(form, { keepEmpty: true });
    const changes = {};
    for (const [k, v] of Object.entries(values)) {
      if (k.includes("password")) { if (v) changes[k] = v; continue; }
      const before = obj[k] === null || obj[k] === undefined ? "" : obj[k];
      if (v !== before && !(v === null && before === "")) changes[k] = v === null ? null : v;
    }
    try {
      await api("admin", "PATCH", `/api/v1/${name}/${obj.id}`, changes);
      sessionStorage.setItem("twp.console.flash", t("saved", { what: LABEL_OF[name](obj) }));
      await route();
    } catch (err) {
      showError(form, err);
    }
  });
  area.replaceChildren(h("section", { class: "card form" }, h("h2", { id: "form-title" }, `${t("edit")} ${LABEL_OF[name](obj)}`), form));
  form.querySelector("input, select").focus();
}

async function membersPanel(group, area) {
  const [members, users] = await Promise.all([api("admin", "GET", `/api/v1/groups/${group.id}/members?limit=1000`), listAll("users")]);
  const ids = new Set(members.items.map((m) => m.id ?? m.user_id));
  const form = h("form", { novalidate: true, "aria-labelledby": "form-title" },
    field({ name: "user_id", label: t("col.user_id"), type: "select", required: true,
      options: users.filter((u) => u.domain_id === group.domain_id && !ids.has(u.id)).map((u) => [u.id, LABEL_OF.users(u)]) }),
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, t("add"))));
  form.querySelector("select").dataset.kind = "integer";
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    try {
      await api("admin", "POST", `/api/v1/groups/${group.id}/members`, formValues(form));
      await membersPanel(group, area);
    } catch (err) {
      showError(form, err);
    }
  });
  const rows = members.items;
  area.replaceChildren(h("section", { class: "card form" }, h("h2", { id: "form-title" }, `${t("members")}: ${group.name}`),
    table([{ label: t("col.login"), key: "login" }, { label: t("col.last_name"), key: "last_name" },
      { label: t("col.actions"), render: (m) => h("button", { type: "button", class: "danger", onclick: async () => {
        await api("admin", "DELETE", `/api/v1/groups/${group.id}/members/${m.id ?? m.user_id}`);
        await membersPanel(group, area);
      } }, t("remove")) }], rows), form,
    h("button", { type: "button", onclick: () => area.replaceChildren() }, t("close"))));
}

/** Authorizations (guide 7.4): grant an object (an application such as Caller, a directory...) to a user or a group. */
async function authorizationsPage() {
  const [grants, users, groups, domains] = await Promise.all([listAll("authorizations"), listAll("users"), listAll("groups"), listAll("domains")]);
  const domainName = new Map(domains.map((d) => [d.id, d.name]));
  const subjects = new Map([
    ...users.map((u) => [`user:${u.id}`, `${t("subject.user")} ${LABEL_OF.users(u)} — ${domainName.get(u.domain_id) || ""}`]),
    ...groups.map((g) => [`group:${g.id}`, `${t("subject.group")} ${g.name} — ${domainName.get(g.domain_id) || ""}`]),
  ]);
  const main = frame("authorizations", h("h1", {}, t("nav.authorizations")));
  const form = h("form", { id: "grant-form", novalidate: true, "aria-labelledby": "grant-title" },
    field({ name: "subject", label: t("grant.subject"), type: "select", required: true, options: [...subjects.entries()] }),
    field({ name: "object_type", label: t("col.object_type"), type: "select", required: true, value: "application",
      options: OBJECT_TYPES.map((o) => [o, t(`object.${o}`, {}, o)]) }),
    field({ name: "object_ref", label: t("col.object_ref"), value: "Caller", hint: t("grant.ref.hint", { apps: APPLICATIONS.join(", ") }) }),
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, t("grant.submit"))));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const values = formValues(form);
    const [subjectType, subjectId] = String(values.subject || ":").split(":");
    try {
      await api("admin", "POST", "/api/v1/authorizations", { object_type: values.object_type, object_ref: values.object_ref || "",
        subject_type: subjectType, subject_id: Number(subjectId) });
      sessionStorage.setItem("twp.console.flash", t("grant.done", { ref: values.object_ref, who: subjects.get(values.subject) }));
      await route();
    } catch (err) {
      showError(form, ["subject_type", "subject_id"].includes(err.field) ? { ...err, field: "subject", detail: err.detail } : err);
    }
  });
  main.append(h("section", { class: "card form" }, h("h2", { id: "grant-title" }, t("grant.title")), form),
    h("section", { "aria-labelledby": "h-list" }, h("h2", { id: "h-list" }, t("list"), ` (${grants.length})`),
      table([{ label: t("col.id"), key: "id" }, { label: t("col.object_type"), render: (g) => t(`object.${g.object_type}`, {}, g.object_type) },
        { label: t("col.object_ref"), key: "object_ref" },
        { label: t("grant.subject"), render: (g) => subjects.get(`${g.subject_type}:${g.subject_id}`) || `${g.subject_type}:${g.subject_id}` },
        { label: t("col.actions"), render: (g) => h("button", { type: "button", class: "danger", "aria-label": `${t("delete")} ${g.object_ref} #${g.id}`,
          onclick: async () => {
            if (!window.confirm(t("confirm.delete", { what: `${g.object_ref} #${g.id}` }))) return;
            await api("admin", "DELETE", `/api/v1/authorizations/${g.id}`);
            await route();
          } }, t("delete")) }], grants, { caption: t("nav.authorizations") })));
}

/** Directories (guide 8): create with the connector's own options, test the connection, synchronize, read the sync reports. */
async function directoriesPage() {
  const [dirs, domains, connectors] = await Promise.all([
    api("admin", "GET", "/api/v1/directories?limit=1000"), listAll("domains"), api("admin", "GET", "/api/v1/directory-connectors")]);
  const domainName = new Map(domains.map((d) => [d.id, d.name]));
  const byName = new Map(connectors.items.map((c) => [c.name, c]));
  const main = frame("directories", h("h1", {}, t("nav.directories")));
  const area = h("div", { id: "form-area" });
  const report = (r) => t("dir.report", { status: r.status, records: r.records, created: r.created, updated: r.updated, deleted: r.deleted,
    duration: r.duration }) + (r.error ? ` — ${r.error}` : "");
  const flash = (text, bad) => {
    const box = document.getElementById("dir-message");
    box.className = bad ? "form-error" : "notice";
    box.textContent = text;
  };
  const rows = dirs.items.map((d) => ({ ...d, domain: domainName.get(d.domain_id) }));
  main.append(
    h("p", {}, h("button", { type: "button", class: "primary", onclick: () => createDirectory(area, domains, connectors.items) }, t("new.directories"))),
    area,
    h("p", { id: "dir-message", class: "notice", role: "status" }),
    h("section", { "aria-labelledby": "h-list" }, h("h2", { id: "h-list" }, t("list"), ` (${rows.length})`),
      table([{ label: t("col.name"), key: "name" }, { label: t("col.domain"), key: "domain" }, { label: t("col.connector"), key: "connector" },
        { label: t("col.type"), key: "type" }, { label: t("col.priority"), key: "priority" }, { label: t("col.state"), render: (d) => badge(d.state || "unknown") },
        { label: t("col.contacts"), key: "contacts" }, { label: t("col.reason"), key: "reason" },
        { label: t("col.actions"), render: (d) => h("div", { class: "actions" },
          byName.get(d.connector) && byName.get(d.connector).capabilities.includes("test_connection") ? h("button", { type: "button",
            "aria-label": `${t("dir.test")} ${d.name}`, onclick: async () => {
              try {
                const r = await api("admin", "POST", `/api/v1/directories/${d.id}/test`);
                flash(`${d.name}: ${r.ok ? t("dir.test.ok") : t("dir.test.bad")} (${r.state}) ${r.message || ""}`, !r.ok);
              } catch (err) {
                flash(err.detail || String(err), true);
              }
            } }, t("dir.test")) : null,
          h("button", { type: "button", "aria-label": `${t("dir.sync")} ${d.name}`, onclick: async (ev) => {
            const button = ev.currentTarget;
            button.disabled = true;
            flash(t("dir.syncing", { name: d.name }));
            busy += 1;  // the sync's own events must not redraw the page under the report
            try {
              const r = await api("admin", "POST", `/api/v1/directories/${d.id}/sync`);
              sessionStorage.setItem("twp.console.flash", `${d.name}: ${report(r)}`);
              await route();
            } catch (err) {
              button.disabled = false;
              flash(err.detail || String(err), true);
            } finally {
              busy -= 1;
            }
          } }, t("dir.sync")),
          h("button", { type: "button", "aria-label": `${t("dir.history")} ${d.name}`, onclick: async () => {
            const history = await api("admin", "GET", `/api/v1/directories/${d.id}/syncs`);
            area.replaceChildren(h("section", { class: "card form" }, h("h2", { id: "form-title" }, `${t("dir.history")}: ${d.name}`),
              table([{ label: t("log.when"), render: (r) => new Date(r.started_at).toLocaleString(document.documentElement.lang) },
                { label: t("dir.trigger"), key: "trigger" }, { label: t("col.state"), render: (r) => badge(r.status) },
                { label: t("dir.records"), key: "records" }, { label: t("dir.changes"), render: (r) => `+${r.created} ~${r.updated} −${r.deleted}` },
                { label: t("log.duration"), render: (r) => `${r.duration ?? "—"} s` },
                { label: t("col.reason"), render: (r) => fmt(r.error || (r.problems || []).join("; ")) }], history.items),
              h("button", { type: "button", onclick: () => area.replaceChildren() }, t("close"))));
          } }, t("dir.history")),
          h("button", { type: "button", class: "danger", "aria-label": `${t("delete")} ${d.name}`, onclick: () => remove("directories", d) }, t("delete"))) }],
      rows, { caption: t("nav.directories"), empty: t("dash.nodirs") })));
}

function optionField(opt) {
  const type = /array/.test(opt.type) ? "text" : /integer|number|duration/.test(opt.type) ? "number" : /secret/.test(opt.type) ? "password" : /boolean|true or false/.test(opt.type) ? "checkbox" : "text";
  const hint = [opt.help, opt.type, opt.default !== null && opt.default !== undefined ? `${t("dir.default")}: ${opt.default}` : null].filter(Boolean).join(" — ");
  const wrap = field({ name: `opt.${opt.name}`, label: opt.name, type, required: opt.required, hint, value: type === "checkbox" ? opt.default : undefined });
  const input = wrap.querySelector("input");
  input.dataset.option = opt.name;
  input.dataset.optType = type;
  if (/array/.test(opt.type)) input.dataset.array = "true";
  if (type === "number") input.setAttribute("step", "any");
  return wrap;
}

async function createDirectory(area, domains, connectors) {
  const options = h("fieldset", { class: "options", "data-field": "options" }, h("legend", {}, t("dir.options")));
  const connector = field({ name: "connector", label: t("col.connector"), type: "select", required: true, value: "twp_users",
    options: connectors.map((c) => [c.name, `${c.name} — ${c.description || ""}`.slice(0, 90)]) });
  const drawOptions = () => {
    const chosen = connectors.find((c) => c.name === connector.querySelector("select").value);
    options.replaceChildren(h("legend", {}, t("dir.options")), ...(chosen ? chosen.options.map(optionField) : []),
      h("p", { class: "field-error", id: "options-error" }));
  };
  connector.querySelector("select").addEventListener("change", drawOptions);
  const form = h("form", { id: "create-directory", novalidate: true, "aria-labelledby": "form-title" },
    field({ name: "domain_id", label: t("col.domain_id"), type: "select", required: true, options: domains.map((d) => [d.id, d.name]) }),
    field({ name: "name", label: t("col.name"), required: true }),
    connector,
    field({ name: "type", label: t("col.type"), type: "select", required: true, value: "public", options: ["public", "private", "draft"].map((x) => [x, x]) }),
    field({ name: "priority", label: t("col.priority"), type: "number", hint: t("dir.priority.hint") }),
    options,
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, t("create")),
      h("button", { type: "button", onclick: () => area.replaceChildren() }, t("cancel"))));
  form.querySelector("select[name=domain_id]").dataset.kind = "integer";
  drawOptions();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const body = {};
    const opts = {};
    for (const el of form.querySelectorAll("input, select")) {
      if (!el.name) continue;
      if (el.dataset.option) {
        if (el.dataset.optType === "checkbox") opts[el.dataset.option] = el.checked;
        else if (el.value !== "") {
          opts[el.dataset.option] = el.dataset.optType === "number" ? Number(el.value)
            : el.dataset.array ? el.value.split(",").map((x) => x.trim()).filter(Boolean) : el.value;
        }
      } else if (el.value !== "") body[el.name] = el.name === "domain_id" || el.name === "priority" ? Number(el.value) : el.value;
    }
    body.options = opts;
    try {
      const obj = await api("admin", "POST", "/api/v1/directories", body);
      sessionStorage.setItem("twp.console.flash", t("created", { what: obj.name }));
      await route();
    } catch (err) {
      if (err.field && err.field.startsWith("options")) {
        // One message may name several options ("options.url: ...; options.base_dn: ..."): each part goes under its option.
        const rest = [];
        let first = null;
        for (const part of String(err.detail).split("; ")) {
          const named = /options\.([\w-]+)/.exec(part) || (err.field.includes(".") ? [null, err.field.split(".")[1]] : null);
          const input = named ? form.querySelector(`[data-option="${CSS.escape(named[1])}"]`) : null;
          if (!input) {
            rest.push(part);
            continue;
          }
          const box = input.closest(".field").querySelector(".field-error");
          box.textContent = box.textContent ? `${box.textContent}; ${part}` : part;
          input.setAttribute("aria-invalid", "true");
          first = first || input;
        }
        form.querySelector("#options-error").textContent = rest.join("; ");
        (first || form.querySelector("[data-option]") || form.querySelector("select")).focus();
      } else {
        showError(form, err);
      }
    }
  });
  area.replaceChildren(h("section", { class: "card form" }, h("h2", { id: "form-title" }, t("new.directories")), form));
  form.querySelector("select").focus();
}

async function remove(name, obj) {
  if (!window.confirm(t("confirm.delete", { what: LABEL_OF[name](obj) }))) return;
  try {
    await api("admin", "DELETE", `/api/v1/${name}/${obj.id}`);
    sessionStorage.setItem("twp.console.flash", t("deleted", { what: LABEL_OF[name](obj) }));
  } catch (err) {
    sessionStorage.setItem("twp.console.flash", err.detail || String(err));
  }
  await route();
}

async function route() {
  const page = (location.hash.replace(/^#\//, "").split("?")[0]) || "dashboard";
  refreshDashboard = null;
  try {
    if (page === "authorizations") await authorizationsPage();
    else if (page === "directories") await directoriesPage();
    else if (page === "dashboard" || !RESOURCES[page]) await dashboard();
    else await resourcePage(page);
  } catch (err) {
    frame(page, h("p", { class: "form-error", role: "alert" }, err.detail || String(err)));
  }
  setLive(liveState);
  const flash = sessionStorage.getItem("twp.console.flash");
  if (flash) {
    sessionStorage.removeItem("twp.console.flash");
    const main = document.getElementById("main");
    main.insertBefore(h("p", { class: "notice", role: "status" }, flash), main.children[1] || null);
  }
  document.title = `TWP — ${t(`nav.${page}`, {}, page)}`;
}

let liveState = "connecting";
let busy = 0;

function start() {
  applyPageLanguage();
  if (!session("admin")) {
    location.assign("/?as=admin");
    return;
  }
  window.addEventListener("hashchange", route);
  live = events("admin", (ev) => {
    if (refreshDashboard && /^(link|directory|admin|plugin|instance|sms)\./.test(ev.type)) refreshDashboard();
    if (/^directory\./.test(ev.type) && location.hash.startsWith("#/directories") && !busy && !document.querySelector("#form-area form")) route();
  }, (state) => {
    liveState = state;
    setLive(state);
  });
  route();
}

start();
export { live };
