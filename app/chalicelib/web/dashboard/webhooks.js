// Webhooks: the tenant's endpoints (add, edit, enable, rotate the secret, send a test event,
// delete) and one endpoint's delivery log (status, attempts, last answer; replay one delivery or
// a time range). A secret is shown once, when it is created or rotated.
import { call, get } from "./api.js";
import { busy, copyButton, empty, errorNotice, field, h, loading, mount, notice, table, when } from "./ui.js";

const STATUS_TEXT = { pending: "Pending", retrying: "Retrying", delivered: "Delivered", failed: "Failed" };

function secretNotice(secret) {
  return notice(
    "warn",
    h("strong", {}, "Signing secret (shown this once): "),
    h("code", { class: "secret" }, secret),
    " ",
    copyButton(secret),
    h("p", { class: "small" }, "Verify each delivery with it (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature)."),
  );
}

function endpointForm(types, onDone) {
  const url = h("input", { name: "url", type: "url", required: true, placeholder: "https://hooks.example.com/sesami" });
  const kinds = h("input", { name: "event_types", value: "*", placeholder: "* or email.bounced, alert.*" });
  const tags = h("input", { name: "tags", placeholder: "campaign:nov (optional)" });
  const description = h("input", { name: "description", maxlength: "200" });
  const status = h("div", {});
  const form = h(
    "form",
    { class: "panel stack", "aria-label": "Add an endpoint" },
    h("h2", {}, "Add an endpoint"),
    field("URL", url, "https only; SESami refuses addresses inside private networks"),
    field("Event types", kinds, `comma-separated: ${types.join(", ")}`),
    field("Tag filter", tags, "email events carrying one of these name:value tags"),
    field("Description", description),
    h("button", { type: "submit" }, "Add endpoint"),
    status,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const list = (v) => v.split(",").map((s) => s.trim()).filter(Boolean);
    const body = { url: url.value.trim(), event_types: list(kinds.value || "*"), tags: list(tags.value) };
    if (description.value.trim()) body.description = description.value.trim();
    try {
      const created = await busy(form, () => call("POST", "webhooks", { body }));
      form.reset();
      onDone(created.secret);
    } catch (err) {
      mount(status, errorNotice(err, "The endpoint was not added"));
    }
  });
  return form;
}

async function act(row, work, done) {
  try {
    await busy(row, work);
    done();
  } catch (err) {
    row.append(errorNotice(err));
  }
}

export async function webhooksPage(target, route, current) {
  if (route.arg) return deliveriesPage(target, route, current);
  const body = h("div", {}, loading("Loading your webhook endpoints"));
  const top = h("div", {});
  mount(target, h("div", { class: "page-head" }, h("h1", {}, "Webhooks")), top, body);
  const reload = (secret) => {
    mount(top, secret ? secretNotice(secret) : null);
    webhooksList(body, current, reload);
  };
  reload(null);
}

async function webhooksList(body, current, reload) {
  let data;
  try {
    data = await get("webhooks");
  } catch (e) {
    if (current()) mount(body, errorNotice(e, "The endpoints could not be loaded"));
    return;
  }
  if (!current()) return;
  const controls = (e) => {
    const row = h("div", { class: "actions" });
    const button = (label, work, cls = "secondary") =>
      h("button", { type: "button", class: cls, onclick: () => act(row, work, () => reload(null)) }, label);
    row.append(
      h("a", { href: `#/webhooks/${e.id}`, class: "button secondary" }, "Deliveries"),
      button("Send test event", () => call("POST", `webhooks/${e.id}/test`)),
      button(e.enabled ? "Disable" : "Enable", () => call("PUT", `webhooks/${e.id}`, { body: { enabled: !e.enabled } })),
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          onclick: () =>
            act(row, async () => reload((await call("POST", `webhooks/${e.id}/secret`, { body: { overlap_hours: 24 } })).secret), () => {}),
        },
        "Rotate secret",
      ),
      button("Delete", () => (confirm(`Delete the endpoint ${e.url}?`) ? call("DELETE", `webhooks/${e.id}`) : Promise.resolve()), "danger"),
    );
    return row;
  };
  mount(
    body,
    data.endpoints.length
      ? h(
          "div",
          { class: "panel" },
          table(
            [
              ["URL", (e) => h("span", { class: "wrap" }, e.url), { class: "wrap" }],
              ["Types", (e) => e.event_types.join(", ")],
              ["Tags", (e) => e.tags.join(", ") || "—"],
              ["State", (e) => (e.enabled ? (e.failing_since ? `failing since ${when(e.failing_since)}` : "enabled") : `disabled: ${e.disabled_reason || "by hand"}`)],
              ["", controls],
            ],
            data.endpoints,
            { className: "endpoints" },
          ),
        )
      : empty("No endpoints yet. Add one, and SESami POSTs every event you choose to it, signed."),
    endpointForm(data.event_types, reload),
  );
}

async function deliveriesPage(target, route, current) {
  const endpoint = route.arg;
  const status = route.params.get("status") || "";
  const body = h("div", { class: "panel" }, loading("Loading deliveries"));
  const filter = h(
    "select",
    { name: "status", "aria-label": "Status" },
    h("option", { value: "" }, "Every status"),
    Object.entries(STATUS_TEXT).map(([v, t]) => h("option", { value: v, selected: v === status }, t)),
  );
  filter.addEventListener("change", () => (location.hash = `#/webhooks/${endpoint}${filter.value ? "?status=" + filter.value : ""}`));
  const replayAll = h("button", { type: "button", class: "secondary" }, "Replay the last 24 hours");
  mount(
    target,
    h("div", { class: "page-head" }, h("h1", {}, "Deliveries"), h("a", { href: "#/webhooks" }, "← Endpoints")),
    h("div", { class: "toolbar" }, filter, replayAll),
    body,
  );
  replayAll.addEventListener("click", async () => {
    const to = new Date();
    const from = new Date(to.getTime() - 86_400_000);
    try {
      const queued = await call("POST", `webhooks/${endpoint}/replay`, { body: { from: from.toISOString(), to: to.toISOString() } });
      replayAll.textContent = `${queued.queued} queued again`;
    } catch (e) {
      body.prepend(errorNotice(e, "Nothing was replayed"));
    }
  });
  let page;
  try {
    page = await get(`webhooks/${endpoint}/deliveries`, status ? { status, limit: 100 } : { limit: 100 });
  } catch (e) {
    if (current()) mount(body, errorNotice(e, "The deliveries could not be loaded"));
    return;
  }
  if (!current()) return;
  const detail = h("div", {});
  const show = async (d) => {
    const full = await get(`webhooks/${endpoint}/deliveries/${d.id}`);
    mount(
      detail,
      h("h2", {}, `Delivery ${full.webhook_id}`),
      table(
        [
          ["#", (a) => String(a.n ?? "")],
          ["At", (a) => when(a.at)],
          ["Kind", (a) => a.kind || ""],
          ["Code", (a) => (a.code === null || a.code === undefined ? "—" : String(a.code))],
          ["ms", (a) => (a.ms === undefined ? "" : String(a.ms)), { class: "num" }],
          ["Answer", (a) => h("code", { class: "wrap" }, a.error || a.body || ""), { class: "wrap" }],
        ],
        full.log,
      ),
      h("h3", {}, "Payload"),
      h("pre", { class: "payload" }, JSON.stringify(JSON.parse(full.payload), null, 2)),
    );
  };
  mount(
    body,
    page.items.length
      ? table(
          [
            ["Event", (d) => d.type],
            ["Status", (d) => h("span", { class: `badge ${d.status}` }, STATUS_TEXT[d.status] || d.status)],
            ["Attempts", (d) => String(d.attempts), { class: "num" }],
            ["Last answer", (d) => (d.last_code ? `HTTP ${d.last_code} in ${d.last_ms} ms` : d.last_error || "—")],
            ["Next attempt", (d) => (d.next_attempt_at ? when(d.next_attempt_at) : "—")],
            [
              "",
              (d) =>
                h(
                  "div",
                  { class: "actions" },
                  h("button", { type: "button", class: "secondary", onclick: () => show(d) }, "Details"),
                  h(
                    "button",
                    {
                      type: "button",
                      class: "secondary",
                      onclick: async (e) => {
                        await call("POST", `webhooks/${endpoint}/deliveries/${d.id}/replay`);
                        e.target.textContent = "Queued";
                      },
                    },
                    "Replay",
                  ),
                ),
            ],
          ],
          page.items,
          { className: "deliveries" },
        )
      : empty("Nothing delivered to this endpoint yet. Send a test event from the endpoints page."),
    detail,
  );
}
