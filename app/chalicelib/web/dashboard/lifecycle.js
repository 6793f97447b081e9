// The ways out: disconnecting the AWS account and deleting the tenant (the account page's danger
// zone), erasing a recipient (the recipient page), and the audit trail that records them.
import { ApiError, call, get, session } from "./api.js";
import { busy, empty, errorNotice, h, loading, mount, notice, table, when } from "./ui.js";

const COUNT_LABELS = {
  event_rows: "event rows",
  tag_view_rows: "tag-view rows",
  event_rows_redacted: "event rows redacted",
  timeline_entries: "timeline entries stripped",
  messages_erased: "messages erased",
  messages_anonymised: "messages anonymised",
  link_counters: "link click counters",
  suppression_entries: "suppression entries (kept as a hash)",
  suppression_tombstones: "removed-suppression records",
  kept_hashed_suppression: "hashed suppressions kept",
  batch_recipients: "bulk batch recipients redacted",
  idempotency_records: "idempotency records redacted",
  quarantine: "quarantined events",
  webhook_deliveries: "webhook deliveries",
  webhooks: "webhook endpoints, deliveries and alerts",
};

function countList(counts) {
  const entries = Object.entries(counts || {}).filter(([, n]) => n);
  if (!entries.length) return h("p", { class: "muted" }, "Nothing was left to remove.");
  return h(
    "ul",
    { class: "counts" },
    entries.map(([kind, n]) => h("li", {}, `${Number(n).toLocaleString()} ${COUNT_LABELS[kind] || kind.replaceAll("_", " ")}`)),
  );
}

// ------------------------------------------------------------------------ recipient erasure

/** The "Erase" action of the recipient page: confirm, erase, show what went. */
export function eraseAction(email, status, onDone) {
  const erase = async (event) => {
    const yes = confirm(
      `Erase every trace of ${email} from SESami: its events, its place in messages, batches, webhook logs and the suppression list?\n\n` +
        "This cannot be undone. If the address is suppressed it stays suppressed, kept only as a hash.",
    );
    if (!yes) return;
    await busy(event.currentTarget.parentElement, async () => {
      try {
        let job = await call("DELETE", `recipients/${encodeURIComponent(email)}`);
        mount(status, notice("info", "Erasing…"));
        while (job.state !== "finished") {
          if (job.step === "counting") {
            // The last clicks on links that named the address must reach the counters first, so that their link counts go for good.
            const c = job.counting || {};
            mount(status, notice("info", `Erased; waiting for the counters to take in its last clicks (${c.counted || 0} of ${c.marked || 0}), then their link counts are removed again. This usually takes seconds, at most a day.`));
          }
          await new Promise((r) => setTimeout(r, 2000));
          job = await get(`erasures/${encodeURIComponent(job.job_id)}`);
        }
        mount(status, h("div", { class: "notice ok", "data-erased": "true" }, h("strong", {}, "Erased. "), "What SESami removed:", countList(job.counts)));
        if (onDone) onDone(job);
      } catch (e) {
        mount(status, errorNotice(e, "Not erased"));
      }
    });
  };
  return h("button", { type: "button", class: "danger", onclick: erase }, "Erase…");
}

// ------------------------------------------------------------------------ the danger zone

function disconnectPanel(account, onChange) {
  const status = h("div", { class: "form-status" });
  const button = h(
    "button",
    {
      type: "button",
      class: "danger",
      disabled: !account.connected,
      onclick: async (event) => {
        const yes = confirm(
          `Disconnect AWS account ${account.account_id}? SESami stops accepting its events and can no longer send for you. ` +
            "Your history stays; you can connect again at any time.",
        );
        if (!yes) return;
        await busy(event.currentTarget.parentElement, async () => {
          try {
            await call("DELETE", "account");
            onChange();
          } catch (e) {
            mount(status, errorNotice(e, "Not disconnected"));
          }
        });
      },
    },
    "Disconnect AWS account",
  );
  return h(
    "div",
    { class: "danger-item" },
    h("div", {}, h("strong", {}, "Disconnect the AWS account"), h("p", { class: "small muted" }, account.connected ? "Events from the account are no longer accepted; events, messages and the suppression list stay." : "No AWS account is connected.")),
    h("div", { class: "actions" }, button),
    status,
  );
}

async function followDeletion(box) {
  for (;;) {
    let job;
    try {
      job = await get("tenant/deletion");
    } catch (e) {
      if (e instanceof ApiError && [401, 404, 410].includes(e.status)) {
        mount(box, notice("ok", "Your tenant and everything in it have been deleted. You are signed out."));
        session.clear();
        setTimeout(() => (location.hash = "#/sign-in"), 4000);
        return;
      }
      mount(box, errorNotice(e, "The deletion's progress could not be read; it goes on"));
      return;
    }
    const waiting = job.state === "waiting" ? " (waiting for writers that were still running, then a last sweep)" : "";
    const removed = Object.values(job.counts || {}).some(Boolean) ? countList(job.counts) : null;
    mount(box, notice("warn", `Deleting: step ${job.step}${waiting}.`), removed);
    await new Promise((r) => setTimeout(r, 3000));
  }
}

function deletePanel(account) {
  const box = h("div", { class: "form-status" });
  const start = async (event) => {
    await busy(event.currentTarget.parentElement, async () => {
      let asked;
      try {
        asked = await call("POST", "tenant/deletion");
      } catch (e) {
        mount(box, errorNotice(e, "The deletion could not be prepared"));
        return;
      }
      const typed = prompt(
        `This deletes, for good:\n- ${asked.will_delete.join("\n- ")}\n\nType the tenant ID (${asked.tenant_id}) to confirm.`,
      );
      if (typed === null) return;
      if (typed.trim() !== asked.tenant_id) {
        mount(box, notice("error", "That is not the tenant ID: nothing was deleted."));
        return;
      }
      try {
        await call("DELETE", "tenant", { body: { confirmation: asked.confirmation } });
      } catch (e) {
        mount(box, errorNotice(e, "Not deleted"));
        return;
      }
      followDeletion(box);
    });
  };
  return h(
    "div",
    { class: "danger-item" },
    h("div", {}, h("strong", {}, "Delete this tenant"), h("p", { class: "small muted" }, `Everything of tenant ${account.tenant_id}: events, messages, the suppression list, batches, users and logins. It runs in the background and cannot be undone.`)),
    h("div", { class: "actions" }, h("button", { type: "button", class: "danger", onclick: start }, "Delete tenant…")),
    box,
  );
}

/** The account page's danger zone (admins; the API refuses anyone else with a 403). */
export function dangerZone(account, onChange) {
  return h("div", { class: "panel danger-zone", id: "danger-zone" }, disconnectPanel(account, onChange), deletePanel(account));
}

// ------------------------------------------------------------------------ the audit trail

export function auditPanel() {
  const box = h("div", {}, loading("Loading the audit trail"));
  get("audit", { limit: 20 })
    .then((r) => {
      mount(
        box,
        r.entries.length
          ? table(
              [
                ["When", (e) => when(e.at)],
                ["Who", (e) => e.actor],
                ["What", (e) => e.action.replaceAll("_", " ").replace(".", ": ")],
                ["Target", (e) => e.target || "—", { class: "wrap mono" }],
              ],
              r.entries,
            )
          : empty("Nothing recorded yet: disconnections, erasures and deletions appear here."),
      );
    })
    .catch((e) => mount(box, e.status === 403 ? notice("info", "Only admins can read the audit trail.") : errorNotice(e, "The audit trail could not be loaded")));
  return box;
}
