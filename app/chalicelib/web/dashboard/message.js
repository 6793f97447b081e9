// One message (timeline, recipients, opens, clicks per link) and one recipient (every message
// to the address, what they did with it, and whether it is suppressed). Opens and clicks are
// told apart: a person's, Apple's proxy's, an image proxy's, a scanner's. The timeline comes a
// page at a time (GET /messages/{id} pages it): "Load more" appends the next page.
import { call, get } from "./api.js";
import { REASONS, classList, engagementBadge, humanOfAll, sentence } from "./engagement.js";
import { eraseAction } from "./lifecycle.js";
import {
  badge,
  busy,
  empty,
  errorNotice,
  externalLink,
  h,
  loading,
  messageLink,
  mount,
  notice,
  num,
  recipientLink,
  table,
  when,
} from "./ui.js";

const TIMELINE_PAGE = 100;

// A link cut to its display form (longer than 200 characters) is not a URL to follow.
function linkCell(l) {
  return l.truncated ? h("span", { class: "mono small", title: "shortened: the link is longer than 200 characters" }, l.url) : externalLink(l.url);
}

function timelineItem(e) {
  return h("li", { "data-status": e.status }, badge(e.status), h("span", { class: "when" }, when(e.at)), eventDetail(e));
}

// The timeline's first page, and a button that appends the next one until there is none.
function timeline(m, id) {
  if (!m.events.length) return empty("No events yet.");
  const list = h("ol", { class: "timeline" }, m.events.map(timelineItem));
  const status = h("div");
  const shown = h("span", { class: "muted small" });
  let count = m.events.length;
  const label = () => `${num(count)} of ${num(m.event_count || count)} events`;
  shown.textContent = label();
  const more = h("div", { class: "actions" }, shown);
  let next = m.next;
  const button = h("button", {
    type: "button",
    class: "secondary",
    "data-action": "load-more",
    onclick: async () => {
      await busy(more, async () => {
        try {
          const page = await get(`messages/${encodeURIComponent(id)}`, { limit: TIMELINE_PAGE, next });
          page.events.forEach((e) => list.append(timelineItem(e)));
          count += page.events.length;
          shown.textContent = label();
          next = page.next;
          if (!next) button.remove();
        } catch (e) {
          mount(status, errorNotice(e, "The next events could not be loaded"));
        }
      });
    },
  }, "Load more");
  if (next) more.append(" ", button);
  return [list, more, status];
}

function eventDetail(event) {
  const d = event.detail || {};
  const lines = [];
  if (d.bounce_type) lines.push(`${d.bounce_type}${d.bounce_subtype ? " / " + d.bounce_subtype : ""}`);
  for (const [address, r] of Object.entries(d.recipients || {})) {
    lines.push(`${address}: ${[r.status, r.diagnostic_code].filter(Boolean).join(" — ")}`);
  }
  if (event.recipients_more) lines.push(`to ${(event.recipients || []).join(", ")} and ${num(event.recipients_more)} more`);
  if (d.recipients_other) lines.push(`and ${num(d.recipients_other)} more recipients (each recipient's page has their own facts)`);
  if (d.feedback_type) lines.push(`feedback: ${d.feedback_type}`);
  if (d.smtp_response) lines.push(d.smtp_response);
  if (d.delay_type) lines.push(`delay: ${d.delay_type}`);
  if (d.reason) lines.push(d.reason);
  if (d.error_message) lines.push(d.error_message);
  return h(
    "div",
    { class: "what" },
    d.engagement
      ? h("div", { class: "small", "data-engagement": d.engagement }, engagementBadge(d.engagement), " ", h("span", { class: "muted", title: d.engagement_reason || "" }, REASONS[d.engagement_reason] || d.engagement_reason || ""))
      : null,
    d.link ? h("div", {}, "clicked ", externalLink(d.link)) : null,
    lines.map((line) => h("div", {}, line)),
    d.user_agent ? h("div", { class: "muted small" }, d.user_agent) : null,
  );
}

// What SESami sent. The HTML goes into a sandboxed frame (no scripts, an opaque origin) loaded
// from the API with its own Content-Security-Policy: nothing remote loads unless the viewer asks.
export function contentPanel(content) {
  if (!content || content.status !== "stored") {
    const why = {
      off: "SESami keeps no content for this account (content retention is off).",
      not_stored: "SESami has no copy of what was sent (sent before content was kept, sent elsewhere, or erased).",
      expired: `The content was kept ${content ? content.retention_days : ""} days and has expired.`,
      unavailable: "The stored content could not be read just now; reload to try again.",
    };
    return h("div", { class: "panel", "data-content-status": content ? content.status : "off" }, empty(why[content && content.status] || why.off));
  }
  const frame = content.html_frame;
  const iframe = frame
    ? h("iframe", {
        class: "mail-frame",
        title: "The message's HTML (sandboxed)",
        sandbox: "",
        referrerpolicy: "no-referrer",
        src: frame.url,
      })
    : null;
  const remote = frame
    ? h(
        "button",
        {
          type: "button",
          class: "secondary",
          onclick: (event) => {
            iframe.src = frame.url_with_remote_content;
            event.currentTarget.disabled = true;
            event.currentTarget.textContent = "Remote content loaded";
          },
        },
        "Load remote content",
      )
    : null;
  return h(
    "div",
    { class: "panel stack", "data-content-status": "stored" },
    h("p", { class: "small muted" }, `Kept until ${when(content.expires_at)} (${content.retention_days} days).`),
    table(
      [
        ["Header", (x) => x.name],
        ["Value", (x) => x.value, { class: "wrap" }],
      ],
      content.headers || [],
    ),
    frame
      ? [
          h("div", { class: "actions" }, h("strong", {}, "HTML"), remote, h("span", { class: "small muted" }, "Images and other remote content are blocked until you load them; scripts never run.")),
          iframe,
        ]
      : null,
    content.text ? [h("strong", {}, "Text"), h("pre", { class: "mail-text" }, content.text)] : null,
  );
}

// What the message's bounds left out, counted by the server: said, never hidden.
function boundedNotice(b) {
  const parts = [];
  if (b.recipients_other) parts.push(`${num(b.recipients_other)} events to recipients past the 50 kept`);
  if (b.tags_dropped) parts.push(`${num(b.tags_dropped)} tag values past 32 KB of tags`);
  if (b.engagement_unjudged) parts.push(`${num(b.engagement_unjudged)} opens and clicks past the earliest 64, classified by their own signal only`);
  return parts.length ? h("p", { class: "small muted", "data-bounded": "message" }, `Counted, not shown in full: ${parts.join("; ")}.`) : null;
}

export async function messagePage(target, route, current) {
  const id = route.arg;
  mount(target, loading("Loading the message"));
  let m;
  try {
    m = await get(`messages/${encodeURIComponent(id)}`, { limit: TIMELINE_PAGE });
  } catch (e) {
    if (!current()) return;
    mount(
      target,
      h("h1", {}, "Message"),
      e.status === 404
        ? notice("info", `No message ${id} in your account's history (it may be older than the retention period).`)
        : errorNotice(e, "The message could not be loaded"),
      h("p", {}, h("a", { href: "#/activity" }, "← Email activity")),
    );
    return;
  }
  if (!current()) return;
  const recipients = Object.entries(m.recipients || {}).map(([address, r]) => ({ address, ...r }));
  mount(
    target,
    h("p", { class: "small" }, h("a", { href: "#/activity" }, "← Email activity")),
    h("div", { class: "page-head" }, h("h1", {}, m.subject || "(no subject)"), badge(m.status)),
    h(
      "div",
      { class: "panel" },
      h(
        "dl",
        { class: "kv" },
        h("dt", {}, "From"),
        h("dd", {}, m.from || "—"),
        h("dt", {}, "Sent"),
        h("dd", {}, when(m.sent_at)),
        h("dt", {}, "Status since"),
        h("dd", {}, when(m.status_at)),
        h("dt", {}, "Message ID"),
        h("dd", { class: "mono" }, m.message_id),
        h("dt", {}, "Tags"),
        h(
          "dd",
          {},
          Object.entries(m.tags || {})
            .filter(([name]) => !name.startsWith("ses:"))
            .map(([name, values]) => `${name}=${values.join(",")}`)
            .join("  ") || "—",
        ),
      ),
    ),
    boundedNotice(m.bounded || {}),
    h("div", { class: "grid two" }, [
      h(
        "div",
        {},
        h("h2", {}, "Timeline"),
        h(
          "div",
          { class: "panel" },
          timeline(m, id),
        ),
      ),
      h(
        "div",
        {},
        h("h2", {}, "Recipients"),
        h(
          "div",
          { class: "panel" },
          table(
            [
              ["Recipient", (r) => recipientLink(r.address), { class: "wrap" }],
              ["Status", (r) => badge(r.status)],
              ["Opens", (r) => num(r.opens || 0), { class: "num" }],
              ["Clicks", (r) => num(r.clicks || 0), { class: "num" }],
              ["By a person", (r) => `${humanOfAll(r.opens_by, r.opens)} · ${humanOfAll(r.clicks_by, r.clicks)}`, { class: "num small" }],
            ],
            recipients,
          ),
        ),
        h("h2", {}, "Opens"),
        h(
          "div",
          { class: "panel" },
          m.opens && m.opens.count
            ? [
                h("p", { class: "engagement-sentence", "data-kind": "opens" }, sentence("Opened", m.opens.count, m.opens.by_class)),
                h("p", { class: "small muted" }, `First ${when(m.opens.first_at)}, last ${when(m.opens.last_at)}.`),
                m.opens.user_agents_scope === "page"
                  ? h("p", { class: "small muted", "data-scope": "page" }, "User agents of the opens in the first page of the timeline.")
                  : null,
                table(
                  [
                    ["User agent", (u) => u.user_agent, { class: "wrap small" }],
                    ["Who", (u) => classList(u.by_class)],
                    ["Opens", (u) => num(u.count), { class: "num" }],
                  ],
                  m.opens.user_agents || [],
                ),
              ]
            : empty("Not opened (or images were blocked)."),
        ),
        h("h2", {}, "Clicks per link"),
        h(
          "div",
          { class: "panel" },
          m.clicks && m.clicks.count
            ? [
                h("p", { class: "engagement-sentence", "data-kind": "clicks" }, sentence("Clicked", m.clicks.count, m.clicks.by_class)),
                table(
                  [
                    ["Link", linkCell, { class: "wrap" }],
                    ["Clicks", (l) => num(l.count), { class: "num" }],
                    ["By a person", (l) => num(l.human || 0), { class: "num" }],
                    ["By a scanner", (l) => num(l.scanner || 0), { class: "num" }],
                  ],
                  m.clicks.links,
                  { className: "link-split" },
                ),
                m.clicks.other_links
                  ? h("p", { class: "small muted", "data-bounded": "links" }, `${num(m.clicks.other_links)} more clicks on links past the 50 this message keeps by name.`)
                  : null,
              ]
            : empty("No clicks."),
        ),
      ),
    ]),
    h("h2", {}, "What was sent"),
    contentPanel(m.content),
  );
}

// A message sent to several addresses: SES does not say which of them opened or clicked, so its
// opens and clicks are the message's (`unattributed`), not this recipient's.
const SHARED_HELP = "Sent to several addresses: SES does not say which recipient opened or clicked it.";
const sharedOf = (m) => m.unattributed || { opens: 0, clicks: 0 };

export async function recipientPage(target, route, current) {
  const email = route.arg;
  const range = route.params.get("range") || "1y";
  mount(target, loading(`Loading ${email}`));
  let r;
  try {
    r = await get(`recipients/${encodeURIComponent(email)}`, { range, limit: 100 });
  } catch (e) {
    if (current()) mount(target, h("h1", {}, email), errorNotice(e, "The recipient could not be loaded"));
    return;
  }
  if (!current()) return;
  const shared = r.totals.unattributed || { opens: 0, clicks: 0 };
  const status = h("div");
  const erasedSuppression = r.suppressed && r.suppression && r.suppression.erased;
  const suppression = erasedSuppression
    ? h("div", { class: "notice warn" }, h("strong", {}, "Suppressed: "), "this address was erased while suppressed; SESami keeps only its hash, so it is never mailed again.")
    : r.suppressed
    ? h(
        "div",
        { class: "notice warn" },
        h("strong", {}, "Suppressed: "),
        `SESami will not send to this address (${r.suppression ? r.suppression.reason : "suppressed"}). `,
        h("a", { href: `#/suppression?q=${encodeURIComponent(email)}` }, "Manage on the suppression list"),
      )
    : h(
        "div",
        { class: "actions" },
        h("span", { class: "muted" }, "Not suppressed. "),
        h(
          "button",
          {
            type: "button",
            class: "danger",
            onclick: async (event) => {
              const reason = prompt(`Why should ${email} never be mailed again?`, "asked to be removed");
              if (!reason) return;
              await busy(event.currentTarget.parentElement, async () => {
                try {
                  await call("PUT", `suppression-list/${encodeURIComponent(email)}`, { body: { reason } });
                  recipientPage(target, route, current);
                } catch (e) {
                  mount(status, errorNotice(e, "Not suppressed"));
                }
              });
            },
          },
          "Suppress",
        ),
      );
  const erasure = h("div");
  const back = () => h("p", { class: "small" }, h("a", { href: "#/activity" }, "← Email activity"));
  // Once erased, the history shown is gone: only the report of what was removed stays.
  const erased = () => mount(target, back(), h("h1", {}, email), erasure);
  mount(
    target,
    back(),
    h("div", { class: "page-head" }, h("h1", {}, email), eraseAction(email, erasure, erased)),
    erasure,
    suppression,
    status,
    h(
      "div",
      { class: "grid cards" },
      h("div", { class: "card" }, h("div", { class: "label" }, "Messages"), h("div", { class: "value" }, num(r.totals.messages))),
      h(
        "div",
        { class: "card", "data-total": "opens" },
        h("div", { class: "label" }, "Opens"),
        h("div", { class: "value" }, num(r.totals.opens)),
        h("div", { class: "sub" }, `${num((r.totals.opens_by || {}).human || 0)} by a person`),
      ),
      h(
        "div",
        { class: "card", "data-total": "clicks" },
        h("div", { class: "label" }, "Clicks"),
        h("div", { class: "value" }, num(r.totals.clicks)),
        h("div", { class: "sub" }, `${num((r.totals.clicks_by || {}).human || 0)} by a person`),
      ),
    ),
    r.totals.opens || r.totals.clicks || shared.opens || shared.clicks
      ? h(
          "p",
          { class: "engagement-sentence" },
          sentence("Opened", r.totals.opens, r.totals.opens_by, shared.opens),
          " ",
          sentence("Clicked", r.totals.clicks, r.totals.clicks_by, shared.clicks),
        )
      : null,
    h("h2", {}, `Messages (last ${range})`),
    h(
      "div",
      { class: "panel" },
      r.messages.length
        ? table(
            [
              ["Sent", (m) => when(m.sent_at)],
              ["Subject", (m) => messageLink(m.message_id, m.subject || "(no subject)"), { class: "wrap" }],
              ["Status", (m) => badge(m.status)],
              ["Opens", (m) => num(m.opens || 0), { class: "num" }],
              ["Clicks", (m) => num(m.clicks || 0), { class: "num" }],
              [
                "By a person",
                (m) =>
                  sharedOf(m).opens || sharedOf(m).clicks
                    ? h("span", { class: "muted", title: SHARED_HELP }, `not attributable: ${num(sharedOf(m).opens)} · ${num(sharedOf(m).clicks)}`)
                    : `${humanOfAll(m.opens_by, m.opens)} · ${humanOfAll(m.clicks_by, m.clicks)}`,
                { class: "num small" },
              ],
              ["Last open", (m) => when(m.last_open_at)],
            ],
            r.messages,
          )
        : empty("No messages to this address in this range."),
    ),
  );
}
