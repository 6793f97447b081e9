// Links: the most clicked links in a range, with their share of all clicks, and how many of the
// clicks were a person's and a security scanner's.
import { get } from "./api.js";
import { parseHash, setParams } from "./router.js";
import { empty, errorNotice, externalLink, h, loading, mount, num, rangePicker, table } from "./ui.js";

// Set through the CSSOM: the page's CSP allows no inline style attributes.
function bar(fraction) {
  const el = h("div", { class: "bar" });
  el.style.width = `${Math.round(100 * fraction)}%`;
  return el;
}

export async function linksPage(target, route, current) {
  const range = route.params.get("range") || "30d";
  const pick = (value) => {
    const params = parseHash().params;
    params.set("range", value);
    setParams(params);
    linksPage(target, parseHash(), current);
  };
  const body = h("div", { class: "panel" }, loading("Loading links"));
  mount(target, h("div", { class: "page-head" }, h("h1", {}, "Links"), rangePicker(range, pick)), body);
  let data;
  try {
    data = await get("links", { range, top: 50 });
  } catch (e) {
    if (current()) mount(body, errorNotice(e, "The links could not be loaded"));
    return;
  }
  if (!current()) return;
  const top = Math.max(1, ...data.links.map((l) => l.clicks));
  mount(
    body,
    h(
      "p",
      { class: "muted" },
      `${num(data.total_clicks)} clicks on ${num(data.distinct_links)} links, ${data.from} to ${data.to} (UTC days): `,
      `${num(data.human_clicks)} by people, ${num(data.scanner_clicks)} by security scanners.`,
    ),
    data.links.length
      ? table(
          [
            ["Link", (l) => (l.truncated ? h("span", { class: "mono small", title: "shortened: the link is longer than 200 characters" }, l.url) : externalLink(l.url)), { class: "wrap" }],
            ["Clicks", (l) => num(l.clicks), { class: "num" }],
            ["By people", (l) => num(l.human || 0), { class: "num" }],
            ["By scanners", (l) => num(l.scanner || 0), { class: "num" }],
            ["Share", (l) => bar(l.clicks / top)],
          ],
          data.links,
          { className: "links" },
        )
      : empty("No clicks in this range. Clicks are tracked when your configuration set has click tracking on."),
  );
}
