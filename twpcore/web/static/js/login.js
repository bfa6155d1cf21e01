// The login page: an administrator (POST /api/v1/auth/admin-login) or a user of the Caller
// application (POST /api/v1/auth/login); a first admin still on its generated password must
// choose a new one before the console opens.
import { api, ApiError, clearSession, saveSession, session } from "./api.js";
import { applyPageLanguage, t } from "./i18n.js";
import { clearErrors, field, formValues, h, showError } from "./ui.js";

/**
 * Whether this admin must replace the password `twp serve` generated: the login answer says so
 * (password_change_required), or else no API request ever set this account's password (the audit
 * log records every create and password change of an admin; the first admin has neither).
 */
async function mustChangePassword(answer) {
  if (typeof answer.password_change_required === "boolean") return answer.password_change_required;
  const id = String(answer.admin.id);
  try {
    for (let offset = 0; offset < 20000; offset += 1000) {
      const page = await api("admin", "GET", `/api/v1/audit?limit=1000&offset=${offset}`);
      for (const entry of page.items) {
        if (entry.object_type !== "admin" || entry.object_id !== id) continue;
        if (entry.action === "create") return false;
        if (entry.action === "update" && entry.detail && (entry.detail.fields || []).includes("password")) return false;
      }
      if (offset + page.items.length >= page.total) break;
    }
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) return false;  // a limited admin cannot read the audit log
    throw err;
  }
  return true;
}

function loginForm() {
  const params = new URLSearchParams(location.search);
  const form = h("form", { id: "login-form", novalidate: true, "aria-labelledby": "login-title" },
    h("fieldset", { class: "role" },
      h("legend", {}, t("login.as")),
      h("div", { class: "radio" }, h("input", { type: "radio", name: "role", id: "role-user", value: "user", checked: params.get("as") !== "admin" }),
        h("label", { for: "role-user" }, t("login.user"))),
      h("div", { class: "radio" }, h("input", { type: "radio", name: "role", id: "role-admin", value: "admin", checked: params.get("as") === "admin" }),
        h("label", { for: "role-admin" }, t("login.admin")))),
    field({ name: "login", label: t("login.login"), required: true, autocomplete: "username" }),
    field({ name: "password", label: t("login.password"), type: "password", autocomplete: "current-password" }),
    field({ name: "domain", label: t("login.domain"), hint: t("login.domain.hint") }),
    h("button", { type: "submit", class: "primary" }, t("login.submit")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const values = formValues(form);
    const role = form.querySelector("input[name=role]:checked").value;
    if (!values.login) {
      showError(form, { field: "login", detail: t("login.missing") });
      return;
    }
    const body = { login: values.login, password: values.password || "" };
    if (values.domain) body.domain = values.domain;
    try {
      if (role === "admin") {
        const answer = await api("admin", "POST", "/api/v1/auth/admin-login", body);
        saveSession("admin", { token: answer.token, admin: answer.admin });
        if (await mustChangePassword(answer)) {
          showChange(answer.admin, body);
          return;
        }
        location.assign("/admin");
      } else {
        body.application = "Caller";
        const answer = await api("user", "POST", "/api/v1/auth/login", body);
        saveSession("user", { token: answer.token, user: answer.user });
        location.assign("/app");
      }
    } catch (err) {
      clearSession(role);
      showError(form, err.field === "login" || err.field === "password" || err.field === "domain" ? err : { detail: err.detail || String(err) });
    }
  });
  return form;
}

function showChange(admin, previous) {
  const main = document.getElementById("main");
  const form = h("form", { id: "change-form", novalidate: true, "aria-labelledby": "change-title" },
    h("p", {}, t("change.why")),
    h("input", { type: "text", name: "", autocomplete: "username", value: admin.login, hidden: true, "aria-hidden": "true", tabindex: "-1" }),
    field({ name: "password", label: t("change.new"), type: "password", required: true, autocomplete: "new-password", hint: t("change.rule") }),
    field({ name: "confirm", label: t("change.confirm"), type: "password", required: true, autocomplete: "new-password" }),
    h("button", { type: "submit", class: "primary" }, t("change.submit")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const { password = "", confirm = "" } = formValues(form);
    if (password !== confirm) {
      showError(form, { field: "confirm", detail: t("change.mismatch") });
      return;
    }
    if (password === previous.password) {
      showError(form, { field: "password", detail: t("change.same") });
      return;
    }
    try {
      await api("admin", "PATCH", `/api/v1/admins/${admin.id}`, { password });
      // A password change may revoke the admin's tokens: log in again with the new password.
      const answer = await api("admin", "POST", "/api/v1/auth/admin-login", { ...previous, password });
      saveSession("admin", { token: answer.token, admin: answer.admin });
      location.assign("/admin#/dashboard?changed=1");
    } catch (err) {
      showError(form, err);
    }
  });
  main.replaceChildren(h("div", { class: "card login" }, h("h1", { id: "change-title" }, t("change.title")), form));
  form.querySelector("input").focus();
}

function render() {
  applyPageLanguage();
  const main = document.getElementById("main");
  const params = new URLSearchParams(location.search);
  main.replaceChildren(
    h("div", { class: "card login" },
      h("h1", { id: "login-title" }, t("login.title")),
      params.get("expired") ? h("p", { class: "notice", role: "status" }, t("login.expired")) : null,
      loginForm(),
      h("p", { class: "links" }, h("a", { href: "/docs" }, t("nav.docs")))));
  if (session("admin") && params.get("as") === "admin") location.assign("/admin");
  main.querySelector("input[name=login]").focus();
}

render();
