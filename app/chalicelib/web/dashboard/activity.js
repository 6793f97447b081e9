// Email activity: every event, newest first, filtered by range or dates, statuses, recipient and
// tag and (opens and clicks) who made them; page by page with the API's cursor; CSV export of
// everything the filters select.
import { call, get } from "./api.js";
import { CLASSES, CLASS_LABELS, engagementBadge } from "./engagement.js";
import { parseHash, setParams } from "./router.js";
import {
  RANGES,
  STATUSES,
  STATUS_LABELS,
  badge,
  busy,
  download,
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

const PAGE_SIZE = 50;

function filtersFrom(params) {
  return {
    range: params.get("range") || (params.get("from") ? "" : "7d"),
    from: params.get("from") || "",
    to: params.get("to") || "",
    status: (params.get("status") || "").split(",").filter(Boolean),
    recipient: params.get("recipient") || "",
    tag: params.get("tag") || "",
    engagement: params.get("engagement") || "",
  };
}

function query(filters) {
  const q = {};
  if (filters.from) {
    q.from = new Date(filters.from).toISOString();
    if (filters.to) q.to = new Date(filters.to).toISOString();
  } else {
    q.range = filters.range || "7d";
  }
  if (filters.status.length) q.status = filters.status.join(",");
  if (filters.recipient) q.recipient = filters.recipient.trim();
  if (filters.tag) q.tag = filters.tag.trim();
  if (filters.engagement) q.engagement = filters.engagement;
  return q;
}

function detailText(event) {
  const d = event.detail || {};
  if (event.type === "Bounce") return [d.bounce_type, d.bounce_subtype].filter(Boolean).join(" / ");
  if (event.type === "Complaint") return d.feedback_type || "complaint";
  if (event.type === "Click") return d.link || "";
  if (event.type === "DeliveryDelay") return d.delay_type || "";
  if (event.type === "Reject") return d.reason || "";
  if (event.type === "Rendering Failure") return d.error_message || d.template_name || "";
  return "";
}

function filterForm(filters, apply, exportCsv) {
  const rangeSelect = h(
    "select",
    { name: "range" },
    RANGES.map(([v, label]) => h("option", { value: v, selected: v === filters.range && !filters.from }, `Last ${label}`)),
    h("option", { value: "", selected: Boolean(filters.from) }, "Dates below"),
  );
  const statuses = h(
    "fieldset",
    { class: "statuses", "aria-label": "Statuses" },
    STATUSES.map((s) =>
      h(
        "label",
        { class: "inline" },
        h("input", { type: "checkbox", name: "status", value: s, checked: filters.status.includes(s) }),
        STATUS_LABELS[s],
      ),
    ),
  );
  const form = h(
    "form",
    { class: "panel filters", "aria-label": "Filters" },
    field("Range", rangeSelect),
    field("From", h("input", { type: "datetime-local", name: "from", value: filters.from })),
    field("To", h("input", { type: "datetime-local", name: "to", value: filters.to })),
    field("Recipient", h("input", { type: "email", name: "recipient", value: filters.recipient, placeholder: "someone@example.com" })),
    field("Tag", h("input", { type: "text", name: "tag", value: filters.tag, placeholder: "campaign:spring" })),
    field(
      "Opened or clicked by",
      h(
        "select",
        { name: "engagement" },
        h("option", { value: "", selected: !filters.engagement }, "Anyone (every event)"),
        CLASSES.map((c) => h("option", { value: c, selected: filters.engagement === c }, CLASS_LABELS[c])),
      ),
      "As classified when each open or click arrived; a message's page shows the final verdict.",
    ),
    statuses,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit" }, "Apply filters"),
      h("button", { type: "button", class: "secondary", onclick: () => apply({ range: "7d", status: [], from: "", to: "", recipient: "", tag: "", engagement: "" }) }, "Clear"),
      h("button", { type: "button", class: "secondary", onclick: () => exportCsv(form) }, "Export CSV"),
    ),
  );
  rangeSelect.addEventListener("change", () => {
    if (rangeSelect.value) {
      form.elements.from.value = "";
      form.elements.to.value = "";
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const from = data.get("from") || "";
    apply({
      range: from ? "" : data.get("range") || "7d",
      from,
      to: from ? data.get("to") || "" : "",
      status: data.getAll("status"),
      recipient: data.get("recipient") || "",
      tag: data.get("tag") || "",
      engagement: data.get("engagement") || "",
    });
  });
  return form;
}

export async function activityPage(target, route, current) {
  const filters = filtersFrom(route.params);
  const status = h("div");
  const results = h("div", { class: "panel" });
  const pager = h("div", { class: "actions" });
  const cursors = [null]; // cursors[i] opens page i

  const apply = (next) => {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(next)) {
      const value = Array.isArray(v) ? v.join(",") : v;
      if (value) params.set(k, value);
    }
    setParams(params);
    activityPage(target, parseHash(), current);
  };

  const exportCsv = async (form) => {
    await busy(form, async () => {
      mount(status, notice("info", "Preparing the CSV…"));
      try {
        let next = null;
        const parts = [];
        let rows = 0;
        do {
          const response = await call("GET", "events", { query: { ...query(filters), format: "csv", next }, raw: true });
          let text = await response.text();
          if (parts.length) text = text.slice(text.indexOf("\n") + 1); // one header row
          rows += Math.max(0, text.trim().split("\n").length - (parts.length ? 0 : 1));
          parts.push(text);
          next = response.headers.get("X-SESami-Next");
        } while (next);
        download("sesami-events.csv", new Blob(parts, { type: "text/csv" }));
        mount(status, notice("ok", `Exported ${rows.toLocaleString()} events.`));
      } catch (e) {
        mount(status, errorNotice(e, "The export failed"));
      }
    });
  };

  async function show(index) {
    mount(results, loading("Loading events"));
    mount(pager);
    let page;
    try {
      page = await get("events", { ...query(filters), limit: PAGE_SIZE, next: cursors[index] });
    } catch (e) {
      if (current()) mount(results, errorNotice(e, "The events could not be loaded"));
      return;
    }
    if (!current()) return;
    if (page.next) cursors[index + 1] = page.next;
    mount(
      results,
      page.events.length
        ? table(
            [
              ["When", (e) => when(e.at)],
              ["Status", (e) => badge(e.status)],
              ["Who", (e) => engagementBadge(e.engagement)],
              ["Recipient", (e) => recipientLink(e.recipient)],
              ["Subject", (e) => messageLink(e.message_id, e.subject || "(no subject)"), { class: "wrap" }],
              ["Detail", (e) => detailText(e), { class: "wrap small" }],
            ],
            page.events,
            { className: "events" },
          )
        : empty(index ? "No more events." : "No events match these filters. Try a longer range or fewer filters."),
    );
    mount(
      pager,
      h("span", { class: "muted small" }, `Page ${index + 1}`),
      index > 0 ? h("button", { type: "button", class: "secondary", onclick: () => show(index - 1) }, "← Newer") : null,
      page.next ? h("button", { type: "button", class: "secondary", onclick: () => show(index + 1) }, "Older →") : null,
    );
  }

  mount(
    target,
    h("div", { class: "page-head" }, h("h1", {}, "Email activity")),
    filterForm(filters, apply, exportCsv),
    status,
    h("h2", {}, "Events"),
    results,
    pager,
  );
  await show(0);
}
