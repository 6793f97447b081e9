// Human and machine opens and clicks: the classes the API reports (see the README, "Honest
// engagement"), in words, as a badge, and as the sentence a message page leads with:
// "Opened 7 times: 2 by a person, 5 by Apple's proxy."
import { h, num } from "./ui.js";

export const CLASSES = ["human", "apple_privacy", "image_proxy", "scanner", "unknown"];
export const CLASS_LABELS = {
  human: "Person",
  apple_privacy: "Apple's proxy",
  image_proxy: "Image proxy",
  scanner: "Scanner",
  unknown: "Unknown",
};
const BY = {
  human: "by a person",
  apple_privacy: "by Apple's proxy",
  image_proxy: "through an image proxy",
  scanner: "by a security scanner",
  unknown: "by something unidentified",
};
export const CLASS_HELP = {
  human: "A person's mail client or browser.",
  apple_privacy: "Apple Mail Privacy Protection fetched the images on delivery, read or not.",
  image_proxy: "Gmail's or Yahoo's image proxy: a real open, the device hidden.",
  scanner: "A security gateway or script: a known user agent, or too soon after delivery.",
  unknown: "No user agent, or one that says neither.",
};

// The rule that decided, in words (the API's reason codes).
export const REASONS = {
  "ua:client": "a mail client or browser",
  "ua:apple_mpp": "Apple's proxy user agent",
  "ua+ip:apple_relay": "Apple's proxy user agent, from Apple's relay",
  "ua:apple_form_not_apple_ip": "Apple's proxy user agent, not from Apple's relay",
  "ua:image_proxy": "an image proxy's user agent",
  "ua:image_proxy_click": "an image proxy's user agent on a click",
  "ua:automation": "an automation user agent",
  "ua:unrecognised": "an unrecognised user agent",
  "ua:missing": "no user agent",
  "ua:bare_click": "Apple's proxy user agent on a click",
  "timing:near_delivery": "within 3 s of delivery",
  "timing:link_burst": "another link clicked within 2 s",
};

export const engagementBadge = (cls) =>
  cls ? h("span", { class: `badge eng ${cls}`, title: CLASS_HELP[cls] || "" }, CLASS_LABELS[cls] || cls) : null;

function times(n) {
  return n === 1 ? "once" : `${num(n)} times`;
}

/** "Opened 7 times: 2 by a person, 5 by Apple's proxy." (`verb`: Opened or Clicked).
 * `unattributed`: opens (clicks) of mail sent to several addresses, beside `count`: SES does not
 * say which recipient they were, so they are neither classified here nor this recipient's. */
export function sentence(verb, count, byClass, unattributed = 0) {
  const total = (count || 0) + (unattributed || 0);
  if (!total) return `${verb === "Opened" ? "Not opened" : "Not clicked"}.`;
  const parts = CLASSES.filter((c) => byClass && byClass[c]).map((c) => `${num(byClass[c])} ${BY[c]}`);
  const counted = CLASSES.reduce((sum, c) => sum + ((byClass && byClass[c]) || 0), 0);
  if (counted < (count || 0)) parts.push(`${num(count - counted)} recorded before SESami told them apart`);
  if (unattributed) {
    parts.push(`${num(unattributed)} on mail sent to several addresses, which SES does not attribute to one recipient`);
  }
  return parts.length ? `${verb} ${times(total)}: ${parts.join(", ")}.` : `${verb} ${times(total)}.`;
}

/** "2 / 7": a person's share of all, for narrow table cells. */
export function humanOfAll(byClass, all) {
  return `${num((byClass && byClass.human) || 0)} / ${num(all || 0)}`;
}

/** A small list of the non-zero classes, for panels. */
export function classList(byClass) {
  const shown = CLASSES.filter((c) => byClass && byClass[c]);
  if (!shown.length) return null;
  return h(
    "ul",
    { class: "eng-list" },
    shown.map((c) => h("li", { "data-class": c }, engagementBadge(c), " ", num(byClass[c]))),
  );
}
