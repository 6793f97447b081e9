// API keys for programs: create one (name, scope, optional expiry) and see it once, with a copy
// button; the list shows each key's prefix, never its secret; revoke with a confirmation. Admins
// only: SESami refuses everyone else, and the page says so instead of offering the forms.
import { call, get } from "./api.js";
import { can, me } from "./me.js";
import { busy, copyButton, empty, errorNotice, field, h, loading, mount, notice, table, when } from "./ui.js";

const SCOPES = [
  ["send", "send — send mail, add suppressions, read (a sender's rights)"],
  ["read", "read — read events, messages, stats and the suppression list (a viewer's)"],
  ["admin", "admin — everything an admin may do, including keys and the team"],
];

function shownOnce(created, onDone) {
  // The key lives in this element only: nothing stores it, and it is gone once dismissed or the
  // page is left. SESami cannot show it again.
  const box = h(
    "div",
    { class: "panel new-key", role: "status" },
    h("h2", {}, `Your new key “${created.name}”`),
    notice("warn", h("strong", {}, "Copy it now. "), "This is the only time SESami shows it: it keeps only a hash. If you lose it, revoke it and create another."),
    h("p", {}, h("code", { id: "new-key", class: "secret" }, created.key)),
    h(
      "div",
      { class: "actions" },
      copyButton(created.key, "Copy the key"),
      h("button", { type: "button", class: "secondary", onclick: () => onDone() }, "I have stored it"),
    ),
  );
  return box;
}

function createForm(onCreated) {
  const status = h("div", { class: "form-status" });
  const form = h(
    "form",
    { class: "panel stack", "aria-label": "Create an API key" },
    h("h2", {}, "Create a key"),
    h(
      "div",
      { class: "grid two" },
      field("Name", h("input", { name: "name", required: true, maxlength: 64, placeholder: "billing service" }), "Who uses it: it names the key in lists and histories."),
      field("Scope", h("select", { name: "scope" }, SCOPES.map(([value, label]) => h("option", { value }, label)))),
    ),
    field(
      "Expires on (optional)",
      h("input", { type: "date", name: "expires", min: new Date(Date.now() + 86_400_000).toISOString().slice(0, 10) }),
      "Empty: the key works until it is revoked.",
    ),
    status,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Create key")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = { name: data.get("name").trim(), scope: data.get("scope") };
    if (data.get("expires")) body.expires_at = `${data.get("expires")}T00:00:00Z`;
    mount(status);
    await busy(form, async () => {
      try {
        const created = await call("POST", "api-keys", { body });
        form.reset();
        onCreated(created);
      } catch (e) {
        mount(status, errorNotice(e, "No key created"));
      }
    });
  });
  return form;
}

export async function keysPage(target, route, current) {
  mount(target, loading("Loading API keys"));
  let account;
  try {
    account = await me();
  } catch (e) {
    if (current()) mount(target, h("h1", {}, "API keys"), errorNotice(e, "Your role could not be loaded"));
    return;
  }
  if (!current()) return;
  const head = h("div", { class: "page-head" }, h("h1", {}, "API keys"));
  const about = h(
    "p",
    { class: "muted" },
    "Programs call SESami's API with a key instead of a person's sign-in: ",
    h("code", {}, "Authorization: Bearer sk_…"),
    ". A key acts with its scope, whoever created it.",
  );
  if (!can(account, "admin")) {
    mount(target, head, about, notice("info", `Only admins manage API keys; you are ${account.role}.`));
    return;
  }
  const fresh = h("div");
  const status = h("div");
  const list = h("div", { class: "panel" });

  async function revoke(key, button) {
    if (!confirm(`Revoke ${key.name} (${key.prefix})? Programs using it are refused from their next request.`)) return;
    button.disabled = true;
    try {
      await call("DELETE", `api-keys/${encodeURIComponent(key.id)}`);
      mount(status, notice("ok", `${key.name} (${key.prefix}) is revoked.`));
      show();
    } catch (e) {
      button.disabled = false;
      mount(status, errorNotice(e, "Not revoked"));
    }
  }

  async function show() {
    mount(list, loading("Loading API keys"));
    let result;
    try {
      result = await get("api-keys");
    } catch (e) {
      if (current()) mount(list, errorNotice(e, "The keys could not be loaded"));
      return;
    }
    if (!current()) return;
    mount(
      list,
      h("h2", {}, "Keys"),
      result.keys.length
        ? table(
            [
              ["Name", (k) => k.name, { class: "wrap" }],
              ["Prefix", (k) => h("code", {}, k.prefix)],
              ["Scope", (k) => k.scope],
              ["Status", (k) => h("span", { class: `badge key-${k.status}` }, k.status)],
              ["Created", (k) => h("span", {}, when(k.created_at), h("span", { class: "muted small" }, ` by ${k.created_by}`))],
              ["Expires", (k) => (k.expires_at ? when(k.expires_at) : "never")],
              ["Last used", (k) => when(k.last_used_at)],
              [
                "",
                (k) =>
                  k.status === "revoked"
                    ? h("span", { class: "muted small" }, `revoked ${when(k.revoked_at)} by ${k.revoked_by || "?"}`)
                    : h("button", { type: "button", class: "danger", "data-revoke": k.prefix, onclick: (ev) => revoke(k, ev.currentTarget) }, "Revoke"),
              ],
            ],
            result.keys,
            { className: "keys" },
          )
        : empty("No API keys yet."),
    );
  }

  const form = createForm((created) => {
    mount(fresh, shownOnce(created, () => mount(fresh)));
    mount(status);
    show();
  });
  mount(target, head, about, fresh, status, list, form);
  await show();
}
