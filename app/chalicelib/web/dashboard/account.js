// The AWS account: the external ID SESami issued, the commands to run the onboarding stack, the
// role ARN form that connects the account, and the setup checklist. Connecting, the onboarding
// commands and the test email are an admin's: other roles see the account and the checklist.
import { call, get } from "./api.js";
import { can } from "./me.js";
import { busy, copyButton, errorNotice, field, h, loading, mount, notice } from "./ui.js";

const CHECK_LABELS = { ok: "OK", failed: "Failed", not_checked: "Not checked" };

function checklist(target, canary = false) {
  const box = h("div", {}, loading(canary ? "Sending a test email and checking" : "Checking your setup"));
  mount(target, box);
  get("verify-sts", canary ? { canary: "true" } : {})
    .then((r) => {
      mount(
        box,
        r.ok
          ? notice("ok", "Everything SESami can check is in order.")
          : notice("warn", "Some items need attention, or could not be checked."),
        h(
          "ul",
          { class: "checklist" },
          r.checks.map((c) =>
            h(
              "li",
              { "data-check": c.id },
              h("span", {}, h("span", { class: `badge ${c.status}` }, CHECK_LABELS[c.status] || c.status)),
              h("div", {}, h("div", {}, c.title), h("div", { class: "msg" }, c.message)),
            ),
          ),
        ),
      );
    })
    .catch((e) => mount(box, errorNotice(e, "The checklist could not run")));
}

function connectForm(account, onConnected) {
  const status = h("div", { class: "form-status" });
  const form = h(
    "form",
    { class: "stack", "aria-label": "Connect your AWS account" },
    field(
      "Role ARN (the onboarding stack's roleArn output)",
      h("input", {
        name: "role_arn",
        required: true,
        value: account.role_arn || "",
        placeholder: "arn:aws:iam::111122223333:role/sesami/SESamiAccess",
        class: "mono",
      }),
    ),
    h(
      "div",
      { class: "grid two" },
      field("Region", h("input", { name: "region", value: account.region || "us-east-1" })),
      field("Configuration set", h("input", { name: "configuration_set", value: account.configuration_set || "sesami-events" })),
    ),
    status,
    h("div", { class: "actions" }, h("button", { type: "submit" }, account.connected ? "Update connection" : "Connect account")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    mount(status, notice("info", "SESami is assuming the role with your external ID…"));
    await busy(form, async () => {
      try {
        const r = await call("PUT", "account", { body: data });
        mount(status, notice("ok", `Connected AWS account ${r.account_id}.`));
        onConnected();
      } catch (e) {
        mount(status, errorNotice(e, "Not connected"));
      }
    });
  });
  return form;
}

export async function accountPage(target, route, current) {
  mount(target, loading("Loading your account"));
  let account, onboarding;
  try {
    account = await get("account");
    // The onboarding values (and the commands) are for admins, who connect the account.
    onboarding = can(account, "admin") ? await get("account/onboarding") : null;
  } catch (e) {
    if (current()) mount(target, h("h1", {}, "AWS account"), errorNotice(e, "The account could not be loaded"));
    return;
  }
  if (!current()) return;
  const admin = Boolean(onboarding);
  const checks = h("div");
  const commands = admin ? onboarding.commands.join("\n") : "";
  mount(
    target,
    h("div", { class: "page-head" }, h("h1", {}, "AWS account"), h("span", { class: `badge ${account.connected ? "ok" : "not_checked"}` }, account.connected ? "Connected" : "Not connected")),
    account.connected
      ? notice("ok", `Connected: AWS account ${account.account_id}, region ${account.region}, configuration set ${account.configuration_set}.`)
      : notice("info", "Not connected yet: run the onboarding stack in your AWS account (step 1), then paste its role ARN (step 2)."),
    h(
      "div",
      { class: "panel" },
      h(
        "dl",
        { class: "kv" },
        h("dt", {}, "Tenant"),
        h("dd", { class: "mono" }, account.tenant_id),
        h("dt", {}, "External ID"),
        h("dd", {}, h("code", { id: "external-id" }, account.external_id), " ", copyButton(account.external_id)),
        h("dt", {}, "SESami's AWS account"),
        h("dd", { class: "mono" }, (admin && onboarding.sesami_account_id) || "—"),
        h("dt", {}, "SESami's event bus"),
        h("dd", { class: "mono" }, (admin && onboarding.event_bus_arn) || "—"),
        h("dt", {}, "Role ARN"),
        h("dd", { class: "mono" }, account.role_arn || "—"),
      ),
      h("p", { class: "small muted" }, "SESami issued the external ID; your role must require it, so nobody else can make SESami act in your account."),
    ),
    admin
      ? [
          h("h2", {}, "1. Run the onboarding stack in your AWS account"),
          h(
            "div",
            { class: "panel" },
            h("p", { class: "muted small" }, "It creates the role SESami assumes, a configuration set that publishes every SES event, and the rule that forwards them to SESami."),
            h("pre", { class: "commands" }, commands),
            copyButton(commands, "Copy commands"),
          ),
          h("h2", {}, "2. Connect the role"),
          h("div", { class: "panel" }, connectForm(account, () => accountPage(target, route, current))),
        ]
      : notice("info", `Connecting the AWS account is for admins; you are ${account.role}.`),
    h("h2", {}, admin ? "3. Check the setup" : "The setup"),
    h(
      "div",
      { class: "panel" },
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: () => checklist(checks) }, "Run the checks again"),
        admin ? h("button", { type: "button", class: "secondary", onclick: () => checklist(checks, true) }, "Send a test email too") : null,
      ),
      checks,
    ),
    h("p", { class: "muted" }, "Colleagues are invited on the ", h("a", { href: "#/team" }, "Team"), " page."),
  );
  if (account.connected) checklist(checks);
  else mount(checks, h("p", { class: "muted" }, "The checklist runs once the account is connected."));
}
