// Send one email through the connected SES account (suppressed recipients are refused, or
// skipped on request), or a templated bulk send from a pasted CSV, with its progress.
import { call, get } from "./api.js";
import { badge, busy, errorNotice, field, h, messageLink, mount, notice, num, recipientLink, table } from "./ui.js";

const list = (text) =>
  (text || "")
    .split(/[,;\n]/)
    .map((s) => s.trim())
    .filter(Boolean);

function suppressedNotice(error) {
  const suppressed = (error.details && error.details.suppressed) || [];
  return notice(
    "warn",
    h("strong", {}, "Not sent: "),
    error.message,
    h(
      "ul",
      {},
      suppressed.map((s) => h("li", {}, recipientLink(s.address), ` — ${s.reason}${s.since ? " since " + s.since.slice(0, 10) : ""}`)),
    ),
  );
}

function singleForm() {
  const status = h("div", { class: "form-status" });
  const form = h(
    "form",
    { class: "panel stack", "aria-label": "Send an email" },
    h("h2", {}, "Send an email"),
    field("From", h("input", { name: "from", required: true, placeholder: "Ada <ada@your-verified-domain.com>" })),
    field("To", h("input", { name: "to", required: true, placeholder: "one@example.com, two@example.com" }), "Up to 50 addresses, separated by commas."),
    field("Cc", h("input", { name: "cc" })),
    field("Subject", h("input", { name: "subject", required: true, maxlength: 998 })),
    field("Text", h("textarea", { name: "text", rows: 6 })),
    field("HTML (optional)", h("textarea", { name: "html", rows: 4 })),
    field("Tags", h("input", { name: "tags", placeholder: "campaign=welcome, team=growth" }), "Name=value pairs: SES events carry them, and Email activity filters on them."),
    h("label", { class: "inline" }, h("input", { type: "checkbox", name: "skip_suppressed", value: "true" }), "Skip suppressed recipients instead of refusing the message"),
    status,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Send")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = { from: data.get("from").trim(), to: list(data.get("to")), subject: data.get("subject") };
    if (list(data.get("cc")).length) body.cc = list(data.get("cc"));
    if (data.get("text")) body.text = data.get("text");
    if (data.get("html")) body.html = data.get("html");
    if (!body.text && !body.html) {
      mount(status, notice("error", "Write a text or an HTML body."));
      return;
    }
    const tags = list(data.get("tags"));
    if (tags.length) body.tags = Object.fromEntries(tags.map((t) => t.split("=").map((s) => s.trim())));
    if (data.get("skip_suppressed")) body.skip_suppressed = true;
    mount(status);
    await busy(form, async () => {
      try {
        const r = await call("POST", "mail", { body, headers: { "Idempotency-Key": crypto.randomUUID() } });
        mount(
          status,
          notice(
            "ok",
            h("strong", {}, "Sent. "),
            `To ${r.recipients.join(", ")}. `,
            r.skipped.length ? `Skipped (suppressed): ${r.skipped.map((s) => s.address).join(", ")}. ` : "",
            messageLink(r.message_id, "Follow this message →"),
          ),
        );
      } catch (e) {
        mount(status, e.code === "recipients_suppressed" ? suppressedNotice(e) : errorNotice(e, "Not sent"));
      }
    });
  });
  return form;
}

/** A CSV with a header row: an `email` (or `to`) column, every other column is a variable. */
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(cell);
      cell = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
    } else cell += c;
  }
  if (cell || row.length) {
    row.push(cell);
    rows.push(row);
  }
  const nonEmpty = rows.filter((r) => r.some((c) => c.trim()));
  if (nonEmpty.length < 2) throw new Error("the CSV needs a header row and at least one recipient");
  const header = nonEmpty[0].map((c) => c.trim());
  const at = header.findIndex((c) => ["email", "to", "address"].includes(c.toLowerCase()));
  if (at < 0) throw new Error("the header row needs an email column");
  return nonEmpty.slice(1).map((cells, n) => {
    const to = (cells[at] || "").trim();
    if (!to) throw new Error(`row ${n + 2} has no email`);
    const variables = {};
    header.forEach((name, i) => {
      if (i !== at && name) variables[name] = (cells[i] || "").trim();
    });
    return { to, variables };
  });
}

function bulkForm() {
  const status = h("div", { class: "form-status" });
  const progress = h("div");
  const form = h(
    "form",
    { class: "panel stack", "aria-label": "Bulk send" },
    h("h2", {}, "Bulk send from a CSV"),
    h("p", { class: "muted small" }, "One message per row. {{name}} in the subject and bodies takes the row's value from the column called name."),
    field("From", h("input", { name: "from", required: true })),
    field("Subject", h("input", { name: "subject", required: true, placeholder: "Hello {{first_name}}" })),
    field("Text", h("textarea", { name: "text", rows: 5, placeholder: "Hi {{first_name}}, …" })),
    field("HTML (optional)", h("textarea", { name: "html", rows: 3 })),
    field(
      "Recipients (CSV, up to 1,000 rows)",
      h("textarea", { name: "csv", rows: 6, required: true, placeholder: "email,first_name\nada@example.com,Ada" }),
    ),
    status,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Queue bulk send")),
    progress,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    let recipients;
    try {
      recipients = parseCsv(data.get("csv"));
    } catch (e) {
      mount(status, notice("error", `The CSV: ${e.message}.`));
      return;
    }
    const template = { subject: data.get("subject") };
    if (data.get("text")) template.text = data.get("text");
    if (data.get("html")) template.html = data.get("html");
    mount(status);
    await busy(form, async () => {
      try {
        const batch = await call("POST", "mail/bulk", {
          body: { from: data.get("from").trim(), template, recipients },
          headers: { "Idempotency-Key": crypto.randomUUID() },
        });
        mount(status, notice("ok", `Queued ${num(recipients.length)} messages as batch ${batch.batch_id}.`));
        follow(batch.batch_id, progress);
      } catch (e) {
        mount(status, errorNotice(e, "Not queued"));
      }
    });
  });
  return form;
}

async function follow(batchId, target) {
  for (let i = 0; i < 120 && target.isConnected; i++) {
    let b;
    try {
      b = await get(`mail/bulk/${encodeURIComponent(batchId)}`);
    } catch (e) {
      mount(target, errorNotice(e, "The batch's progress could not be loaded"));
      return;
    }
    const c = b.counts || {};
    mount(
      target,
      h("p", {}, `Batch ${b.status}: ${num(b.progress.processed)} of ${num(b.progress.total)} processed — `,
        `${num(c.sent)} sent, ${num(c.suppressed)} suppressed, ${num(c.failed)} failed.`),
      b.results && b.results.length
        ? table(
            [
              ["Recipient", (r) => recipientLink(r.address)],
              ["Result", (r) => badge(r.status)],
              ["Message", (r) => (r.message_id ? messageLink(r.message_id, "view") : r.error || r.reason || "—"), { class: "wrap small" }],
            ],
            b.results.slice(0, 200),
          )
        : null,
    );
    if (b.status === "done" || b.status === "incomplete") return;
    await new Promise((resolve) => setTimeout(resolve, 1500));
  }
}

export async function sendPage(target) {
  mount(
    target,
    h("div", { class: "page-head" }, h("h1", {}, "Send")),
    h("p", { class: "muted" }, "Mail goes out through SES in your connected AWS account, with your configuration set, so every event is tracked here."),
    h("div", { class: "grid two" }, singleForm(), bulkForm()),
  );
}
