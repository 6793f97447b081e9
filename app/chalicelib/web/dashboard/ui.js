// Small DOM helpers. Text always goes in as text (never as HTML), so nothing an email, a subject
// or a link contains can run in the page.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function mount(target, ...children) {
  target.replaceChildren();
  append(target, children);
}

export const STATUSES = [
  "SENT",
  "DELIVERED",
  "OPENED",
  "CLICKED",
  "BOUNCED",
  "COMPLAINED",
  "DELIVERY_DELAYED",
  "REJECTED",
  "RENDERING_FAILED",
  "SUBSCRIPTION",
];
export const STATUS_LABELS = {
  SENT: "Sent",
  DELIVERED: "Delivered",
  OPENED: "Opened",
  CLICKED: "Clicked",
  BOUNCED: "Bounced",
  COMPLAINED: "Complained",
  DELIVERY_DELAYED: "Delayed",
  REJECTED: "Rejected",
  RENDERING_FAILED: "Rendering failed",
  SUBSCRIPTION: "Subscription",
};
export const STATUS_COLORS = {
  SENT: "#3b82f6",
  DELIVERED: "#16a34a",
  OPENED: "#0d9488",
  CLICKED: "#9333ea",
  BOUNCED: "#dc2626",
  COMPLAINED: "#ea580c",
  DELIVERY_DELAYED: "#ca8a04",
  REJECTED: "#7f1d1d",
  RENDERING_FAILED: "#be185d",
  SUBSCRIPTION: "#64748b",
};
export const RANGES = [
  ["24h", "24 hours"],
  ["7d", "7 days"],
  ["30d", "30 days"],
  ["1y", "1 year"],
];

export const badge = (status) => h("span", { class: `badge ${status}` }, STATUS_LABELS[status] || status);

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateTime.format(d);
}
export const num = (n) => (n === undefined || n === null ? "—" : Number(n).toLocaleString());
export const pct = (v, digits = 2) => (v === undefined || v === null ? "—" : `${(v * 100).toFixed(digits)}%`);

export const loading = (what = "Loading") => h("div", { class: "loading", role: "status" }, `${what}…`);
export const empty = (text) => h("div", { class: "empty" }, text);
export function notice(kind, ...children) {
  return h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, ...children);
}
export function errorNotice(error, what) {
  const details = error && error.details;
  return notice(
    "error",
    h("strong", {}, what ? `${what}: ` : "Something went wrong: "),
    error ? error.message : "unknown error",
    details && details.field ? h("span", { class: "muted" }, ` (field: ${details.field})`) : null,
  );
}

/** A table; each column is [header, cell(row), options]; cells get data-label for phones. */
export function table(columns, rows, { className = "" } = {}) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: `responsive ${className}` },
      h("thead", {}, h("tr", {}, columns.map(([title, , o]) => h("th", { class: (o && o.class) || "" }, title)))),
      h(
        "tbody",
        {},
        rows.map((row) =>
          h(
            "tr",
            {},
            columns.map(([title, cell, o]) => h("td", { class: (o && o.class) || "", "data-label": title }, cell(row))),
          ),
        ),
      ),
    ),
  );
}

export const messageLink = (id, text) => h("a", { href: `#/message/${encodeURIComponent(id)}` }, text || id);
export const recipientLink = (email) => h("a", { href: `#/recipient/${encodeURIComponent(email)}` }, email);

/** A segmented control for the range presets. */
export function rangePicker(current, onPick) {
  return h(
    "div",
    { class: "presets", role: "group", "aria-label": "Time range" },
    RANGES.map(([value, label]) =>
      h(
        "button",
        { type: "button", "aria-pressed": value === current ? "true" : "false", onclick: () => onPick(value), title: label },
        value,
      ),
    ),
  );
}

export function copyButton(text, label = "Copy") {
  const button = h("button", { type: "button", class: "secondary" }, label);
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Select and copy";
    }
    setTimeout(() => (button.textContent = label), 1500);
  });
  return button;
}

export function download(filename, blob) {
  const a = h("a", { href: URL.createObjectURL(blob), download: filename });
  document.body.append(a);
  a.click();
  setTimeout(() => {
    URL.revokeObjectURL(a.href);
    a.remove();
  }, 1000);
}

/** Disable a form's buttons while `work` runs. */
export async function busy(form, work) {
  const buttons = [...form.querySelectorAll("button")];
  buttons.forEach((b) => (b.disabled = true));
  try {
    return await work();
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

let hints = 0;
/** A labelled input; a hint is linked by aria-describedby, so it is not part of the name. */
export function field(label, input, hint) {
  if (!hint) return h("label", {}, label, input);
  const id = `hint-${++hints}`;
  input.setAttribute("aria-describedby", id);
  return h("div", { class: "field" }, h("label", {}, label, input), h("span", { class: "small muted", id }, hint));
}

/** A link to a URL from an email (http and https only); anything else is shown as text. */
export function externalLink(url) {
  let ok = false;
  try {
    ok = ["http:", "https:"].includes(new URL(url).protocol);
  } catch {
    ok = false;
  }
  return ok ? h("a", { href: url, rel: "noopener noreferrer", target: "_blank" }, url) : h("span", {}, url);
}
