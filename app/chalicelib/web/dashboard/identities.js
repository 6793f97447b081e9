// The connected account's SES identities: verification, DKIM, MAIL FROM, the DNS records a
// pending domain needs, and whether the account is still in the SES sandbox.
import { get } from "./api.js";
import { empty, errorNotice, h, loading, mount, notice, table } from "./ui.js";

const STATE = { SUCCESS: "ok", PENDING: "warn", TEMPORARY_FAILURE: "warn", FAILED: "bad", NOT_STARTED: "muted" };
const state = (value) => h("span", { class: `state ${STATE[value] || "muted"}` }, value || "—");

export async function identitiesPage(target, route, current) {
  mount(target, loading("Asking SES for the account's identities"));
  let page;
  try {
    page = await get("identities", { limit: 50, next: route.params.get("next") });
  } catch (e) {
    if (current()) mount(target, h("h1", {}, "Identities"), errorNotice(e, "The identities could not be read"));
    return;
  }
  if (!current()) return;
  mount(
    target,
    h("h1", {}, "Identities"),
    h("p", { class: "muted" }, `The addresses and domains your SES account in ${page.region} may send from. SESami refuses a send from anything else, naming what to verify.`),
    page.sandbox === true
      ? notice("warn", h("strong", {}, "Sandbox: "), "SES still keeps this account in its sandbox: it sends only to verified addresses, and at most 200 messages a day. Request production access in the SES console.")
      : page.sandbox === false
        ? notice("ok", "Production access: SES sends to any address.")
        : null,
    page.items.length
      ? page.items.map((i) =>
          h(
            "section",
            { class: "panel stack identity", "data-identity": i.identity },
            h("div", { class: "page-head" }, h("h2", {}, i.identity), state(i.verification_status)),
            h(
              "dl",
              { class: "kv" },
              h("dt", {}, "Type"),
              h("dd", {}, i.type === "EMAIL_ADDRESS" ? "address" : "domain"),
              h("dt", {}, "Sending"),
              h("dd", {}, i.sendable ? "allowed" : i.sending_enabled ? "not verified yet" : "disabled"),
              h("dt", {}, "DKIM"),
              h("dd", {}, state(i.dkim.status), i.dkim.signing_enabled ? " signing" : "", i.dkim.signing_attributes_origin ? ` (${i.dkim.signing_attributes_origin === "EXTERNAL" ? "your key" : "Easy DKIM"}${i.dkim.current_signing_key_length ? ", " + i.dkim.current_signing_key_length : ""})` : ""),
              h("dt", {}, "MAIL FROM"),
              h("dd", {}, i.mail_from && i.mail_from.domain ? [i.mail_from.domain, " ", state(i.mail_from.status)] : "SES's default (amazonses.com)"),
            ),
            i.next_step ? notice("info", i.next_step) : null,
            i.dns_records.length
              ? [
                  h("strong", {}, i.verification_status === "SUCCESS" ? "DNS records" : "DNS records to add"),
                  table(
                    [
                      ["Type", (r) => r.type],
                      ["Name", (r) => h("span", { class: "mono" }, r.name), { class: "wrap" }],
                      ["Value", (r) => h("span", { class: "mono" }, r.value), { class: "wrap" }],
                      ["For", (r) => r.purpose, { class: "small" }],
                      ["", (r) => (r.done ? "✓ found" : "pending")],
                    ],
                    i.dns_records,
                  ),
                ]
              : null,
          ),
        )
      : empty("No identities: verify a domain or an address in SES first."),
    page.next ? h("p", {}, h("a", { href: `#/identities?next=${encodeURIComponent(page.next)}` }, "More identities →")) : null,
  );
}
