// The suppression list: search by prefix, filter by reason, add, remove (with a reason that the
// tombstone keeps), and a two-way sync with the SES account-level suppression list.
import { call, get } from "./api.js";
import { can, me } from "./me.js";
import { parseHash, setParams } from "./router.js";
import {
  badge,
  busy,
  empty,
  errorNotice,
  field,
  h,
  loading,
  messageLink,
  mount,
  notice,
  recipientLink,
  table,
  when,
} from "./ui.js";

const REASONS = ["BOUNCE", "COMPLAINT", "MANUAL", "UNSUBSCRIBED"];

function why(entry) {
  if (entry.reason === "BOUNCE") return [entry.bounce_type, entry.bounce_subtype, entry.diagnostic_code].filter(Boolean).join(" · ");
  if (entry.reason === "COMPLAINT") return entry.feedback_type || "complaint";
  return entry.note || (entry.last_change && entry.last_change.why) || "";
}

export async function suppressionPage(target, route, current) {
  // Removing and syncing are an admin's, adding a sender's: the page offers only what the role
  // may do (SESami refuses the rest anyway). Unknown role: offer it, and let SESami answer.
  const account = await me().catch(() => null);
  const admin = !account || can(account, "admin");
  const adds = !account || can(account, "suppression:add");
  if (!current()) return;
  const q = route.params.get("q") || "";
  const reason = route.params.get("reason") || "";
  const removed = route.params.get("removed") === "true";
  const status = h("div");
  const results = h("div", { class: "panel" });
  const pager = h("div", { class: "actions" });
  const cursors = [null];
  const reload = () => suppressionPage(target, parseHash(), current);

  const search = h(
    "form",
    { class: "panel filters", role: "search" },
    field("Address or prefix", h("input", { type: "search", name: "q", value: q, placeholder: "user@ or @example.com" })),
    field(
      "Reason",
      h(
        "select",
        { name: "reason" },
        h("option", { value: "" }, "Any reason"),
        REASONS.map((r) => h("option", { value: r, selected: r === reason }, r.toLowerCase())),
      ),
    ),
    h("label", { class: "inline" }, h("input", { type: "checkbox", name: "removed", value: "true", checked: removed }), "Show removed addresses"),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Search")),
  );
  search.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(search);
    const params = new URLSearchParams();
    if (data.get("q")) params.set("q", data.get("q").trim());
    if (data.get("reason")) params.set("reason", data.get("reason"));
    if (data.get("removed")) params.set("removed", "true");
    setParams(params);
    reload();
  });

  const add = h(
    "form",
    { class: "panel stack", "aria-label": "Suppress an address" },
    h("h2", {}, "Suppress an address"),
    field("Email address", h("input", { type: "email", name: "email", required: true })),
    field("Why", h("input", { type: "text", name: "reason", required: true, maxlength: 500, placeholder: "asked us by phone" })),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Suppress")),
  );
  add.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(add);
    await busy(add, async () => {
      try {
        const entry = await call("PUT", `suppression-list/${encodeURIComponent(data.get("email").trim())}`, {
          body: { reason: data.get("reason") },
        });
        mount(status, notice("ok", `${entry.address} is suppressed.`));
        add.reset();
        show(0);
      } catch (e) {
        mount(status, errorNotice(e, "Not suppressed"));
      }
    });
  });

  const syncButton = h("button", { type: "button", class: "secondary" }, "Sync with SES");
  syncButton.addEventListener("click", async () => {
    syncButton.disabled = true;
    mount(status, notice("info", "Syncing with the SES account-level suppression list…"));
    try {
      const r = await call("POST", "suppression-list/sync");
      if (r.status === "not_available") mount(status, notice("warn", r.message));
      else
        mount(
          status,
          notice(
            r.errors ? "warn" : "ok",
            `Synced: ${r.imported} imported from SES, ${r.pushed} pushed to SES, ${r.in_both} already in both, ` +
              `${r.removed_from_ses} removed from SES, ${r.errors} errors.`,
          ),
        );
      show(0);
    } catch (e) {
      mount(status, errorNotice(e, "The sync failed"));
    } finally {
      syncButton.disabled = false;
    }
  });

  async function remove(entry, button) {
    const why = prompt(`Remove ${entry.address} from the suppression list? SESami will mail it again.\nWhy?`, "confirmed the address works");
    if (why === null) return;
    button.disabled = true;
    try {
      await call("DELETE", `suppression-list/${encodeURIComponent(entry.address)}`, { query: { reason: why || undefined } });
      mount(status, notice("ok", `${entry.address} was removed from the suppression list.`));
      show(0);
    } catch (e) {
      button.disabled = false;
      mount(status, errorNotice(e, "Not removed"));
    }
  }

  async function show(index) {
    mount(results, loading("Loading the suppression list"));
    mount(pager);
    let page;
    try {
      page = await get("suppression-list", { q, reason, removed: removed ? "true" : undefined, limit: 50, next: cursors[index] });
    } catch (e) {
      if (current()) mount(results, errorNotice(e, "The list could not be loaded"));
      return;
    }
    if (!current()) return;
    if (page.next) cursors[index + 1] = page.next;
    mount(
      results,
      page.items.length
        ? table(
            [
              ["Address", (e) => recipientLink(e.address), { class: "wrap" }],
              ["Reason", (e) => (e.reasons || [e.reason]).map((r) => badge(r))],
              ["Why", (e) => why(e), { class: "wrap small" }],
              ["Since", (e) => when(e.created_at)],
              ["Message", (e) => (e.source_message_id ? messageLink(e.source_message_id, "view") : "—")],
              [
                "",
                (e) =>
                  e.suppressed
                    ? admin && h("button", { type: "button", class: "danger", "data-remove": e.address, onclick: (ev) => remove(e, ev.currentTarget) }, "Remove")
                    : h("span", { class: "muted small" }, `removed ${when(e.removed_at)} by ${e.removed_by || "?"}`),
              ],
            ],
            page.items,
            { className: "suppression" },
          )
        : empty(q || reason ? "No suppressed address matches." : "Nobody is suppressed. Permanent bounces and complaints land here automatically."),
    );
    mount(
      pager,
      index > 0 ? h("button", { type: "button", class: "secondary", onclick: () => show(index - 1) }, "← Previous") : null,
      page.next ? h("button", { type: "button", class: "secondary", onclick: () => show(index + 1) }, "Next →") : null,
    );
  }

  mount(
    target,
    h("div", { class: "page-head" }, h("h1", {}, "Suppression list"), admin ? syncButton : null),
    h("p", { class: "muted" }, "Addresses SESami refuses to send to: permanent bounces and complaints are added as SES reports them."),
    search,
    status,
    results,
    pager,
    adds ? add : null,
  );
  await show(0);
}
