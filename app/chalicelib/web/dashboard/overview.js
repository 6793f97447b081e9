// Overview: totals, reputation rates against SES's lines, open and click rates (people's and
// everything's: the tenant's setting picks which leads), events over time by status, top links.
import { pausedNotice } from "./alerts.js";
import { get } from "./api.js";
import { CLASS_LABELS, classList } from "./engagement.js";
import { parseHash, setParams } from "./router.js";
import {
  STATUS_COLORS,
  STATUS_LABELS,
  errorNotice,
  externalLink,
  h,
  loading,
  mount,
  notice,
  num,
  pct,
  rangePicker,
  table,
} from "./ui.js";

const CHARTED = ["SENT", "DELIVERED", "OPENED", "CLICKED", "BOUNCED", "COMPLAINED", "DELIVERY_DELAYED", "REJECTED"];
// The API's states against SES's lines: below review, past review, past the pause line.
const STATE_TEXT = { ok: "Healthy", warning: "Past SES's review line", at_risk: "SES may pause sending" };
let chart = null;

function rateCard(title, rate) {
  return h(
    "div",
    { class: `card rate ${rate.state}`, "data-rate": title.toLowerCase() },
    h("div", { class: "label" }, title),
    h("div", { class: "value" }, pct(rate.value)),
    h("div", { class: "state" }, STATE_TEXT[rate.state] || rate.state),
    h("div", { class: "sub" }, `SES review at ${pct(rate.review_at, 1)}, pause at ${pct(rate.pause_at, 1)}`),
  );
}

// The open and click rates, people's and raw side by side; the account setting picks the lead.
function engagementCard(title, rate, lead, detail) {
  const every = title.startsWith("Click") ? "every click" : "every open";
  const people = `${pct(rate.human, 1)} by people`;
  const all = `${pct(rate.value, 1)} counting ${every}`;
  return h(
    "div",
    { class: "card rate engagement lead", "data-rate": title.toLowerCase(), "data-lead": lead },
    h("div", { class: "label" }, title),
    h("div", { class: "value" }, pct(lead === "raw" ? rate.value : rate.human, 1)),
    h("div", { class: "state" }, lead === "raw" ? `counting ${every}` : "by people only"),
    h("div", { class: "alt" }, lead === "raw" ? people : all),
    h("div", { class: "sub" }, detail),
  );
}

function whoCard(title, counts) {
  const { total, ...byClass } = counts;
  return h(
    "div",
    { class: "card", "data-who": title.toLowerCase() },
    h("div", { class: "label" }, `${title}: ${num(total)}`),
    classList(byClass) || h("div", { class: "sub" }, "none in this range"),
  );
}

function totalCard(status, totals) {
  const sent = totals.SENT || 0;
  const value = totals[status] || 0;
  return h(
    "div",
    { class: "card", "data-total": status },
    h("div", { class: "label" }, STATUS_LABELS[status]),
    h("div", { class: "value" }, num(value)),
    status !== "SENT" && sent ? h("div", { class: "sub" }, `${pct(value / sent, 1)} of sent`) : null,
  );
}

function drawChart(canvas, stats) {
  if (chart) chart.destroy();
  chart = null;
  if (!window.Chart) {
    canvas.replaceWith(notice("warn", "Chart.js did not load (run `make install`); the totals above are complete."));
    return;
  }
  const labels = stats.series.map((point) =>
    stats.interval === "hour" ? point.t.slice(11, 13) + ":00" : point.t.slice(5),
  );
  const people = [
    ["OPENED_HUMAN", "Opened by people", STATUS_COLORS.OPENED],
    ["CLICKED_HUMAN", "Clicked by people", STATUS_COLORS.CLICKED],
  ].map(([key, label, color]) => ({
    label,
    data: stats.series.map((point) => point[key] || 0),
    borderColor: color,
    backgroundColor: color,
    borderDash: [6, 4],
    borderWidth: 2,
    pointRadius: 0,
    tension: 0.25,
  }));
  chart = new window.Chart(canvas, {
    type: "line",
    data: {
      labels,
      datasets: [
        ...CHARTED.map((status) => ({
          label: STATUS_LABELS[status],
          data: stats.series.map((point) => point[status] || 0),
          borderColor: STATUS_COLORS[status],
          backgroundColor: STATUS_COLORS[status],
          borderWidth: 2,
          pointRadius: stats.series.length > 60 ? 0 : 2,
          tension: 0.25,
          hidden: ["REJECTED", "DELIVERY_DELAYED"].includes(status) && !stats.totals[status],
        })),
        ...people,
      ],
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: "index", intersect: false },
      plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
    },
  });
}

export async function overviewPage(target, route, current) {
  const range = route.params.get("range") || "7d";
  const pick = (value) => {
    const params = parseHash().params;
    params.set("range", value);
    setParams(params);
    overviewPage(target, parseHash(), current);
  };
  const body = h("div", {}, loading("Loading your sending statistics"));
  mount(target, h("div", { class: "page-head" }, h("h1", {}, "Overview"), rangePicker(range, pick)), body);
  let stats, links, alerts, account;
  try {
    [stats, links, alerts, account] = await Promise.all([
      get("stats", { range }),
      get("links", { range, top: 5 }),
      get("alerts").catch(() => null), // the overview stands without it
      get("account"),
    ]);
  } catch (e) {
    if (current()) mount(body, errorNotice(e, "The statistics could not be loaded"));
    return;
  }
  if (!current()) return;
  const totals = stats.totals;
  const e = stats.engagement;
  const lead = (account.settings && account.settings.overview_rate) || "human";
  const anything = CHARTED.some((s) => totals[s]);
  const canvas = h("canvas", { id: "events-chart", "aria-label": "Events over time by status", role: "img" });
  const paused = alerts && alerts.sending_paused;
  const firing = alerts ? alerts.rules.filter((r) => r.state === "firing") : [];
  mount(
    body,
    paused ? pausedNotice(paused, () => overviewPage(target, parseHash(), current)) : null,
    firing.length
      ? notice("warn", h("strong", {}, "Alert: "), firing.map((r) => `${r.label} ${pct(r.current.value)}`).join(", "), " ", h("a", { href: "#/alerts" }, "See alerts →"))
      : null,
    stats.counting && stats.counting.behind
      ? notice(
          "warn",
          `The counts below are behind: the newest events were counted ${Math.round(stats.counting.lag_seconds)} s after they arrived (last counted ${stats.counting.counted_at}). The email activity list is current.`,
        )
      : null,
    anything ? null : notice("info", "No email events in this range yet. Send mail through your configuration set, or pick a longer range."),
    h("div", { class: "grid cards" }, rateCard("Bounce rate", stats.rates.bounce), rateCard("Complaint rate", stats.rates.complaint)),
    h("h2", {}, "Opens and clicks: people and machines"),
    h(
      "div",
      { class: "grid cards" },
      engagementCard("Open rate", stats.rates.open, lead, `${num(e.opened_messages_human)} of ${num(totals.DELIVERED)} delivered opened by a person`),
      engagementCard("Click rate", stats.rates.click, lead, `${num(e.clicked_messages_human)} of ${num(totals.DELIVERED)} delivered clicked by a person`),
      whoCard("Opens", e.opens),
      whoCard("Clicks", e.clicks),
    ),
    h(
      "p",
      { class: "small muted" },
      `People's rates leave out ${CLASS_LABELS.apple_privacy}, image proxies, scanners and the unidentified: `,
      "a lower bound (someone may read behind Apple's proxy). The raw rates count everything: an upper bound. ",
      h("a", { href: "#/account" }, lead === "raw" ? "Lead with people's rates" : "Lead with the raw rates"),
      " (account settings).",
    ),
    h("h2", {}, "Totals"),
    h("div", { class: "grid cards" }, CHARTED.map((s) => totalCard(s, totals))),
    h("h2", {}, `Events over time (per ${stats.interval})`),
    h("div", { class: "panel" }, h("div", { class: "chart-box" }, canvas)),
    h("h2", {}, "Top links"),
    h(
      "div",
      { class: "panel" },
      links.links.length
        ? table(
            [
              ["Link", (l) => externalLink(l.url), { class: "wrap" }],
              ["Clicks", (l) => num(l.clicks), { class: "num" }],
              ["By people", (l) => num(l.human || 0), { class: "num" }],
              ["By scanners", (l) => num(l.scanner || 0), { class: "num" }],
            ],
            links.links,
          )
        : h("div", { class: "empty" }, "No clicks in this range."),
      h("p", { class: "small" }, h("a", { href: `#/links?range=${range}` }, "All links →")),
    ),
  );
  drawChart(canvas, stats);
}
