// The AWS account: the external ID SESami issued, the commands to run the onboarding stack, the
// role ARN form that connects the account, the setup checklist, inviting colleagues, the audit
// trail and the danger zone (disconnect, delete the tenant: lifecycle.js).
import { call, get } from "./api.js";
import { auditPanel, dangerZone } from "./lifecycle.js";
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

function inviteForm() {
  const status = h("div", { class: "form-status" });
  const form = h(
    "form",
    { class: "stack", "aria-label": "Invite a colleague" },
    field("Colleague's email", h("input", { type: "email", name: "email", required: true })),
    status,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "secondary" }, "Send invitation")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const email = new FormData(form).get("email");
    await busy(form, async () => {
      try {
        await call("POST", "account/users", { body: { email } });
        mount(status, notice("ok", `${email} is invited: Cognito emails them a temporary password.`));
        form.reset();
      } catch (e) {
        mount(status, errorNotice(e, "Not invited"));
      }
    });
  });
  return form;
}

export async function accountPage(target, route, current) {
  mount(target, loading("Loading your account"));
  let account, onboarding;
  try {
    [account, onboarding] = await Promise.all([get("account"), get("account/onboarding")]);
  } catch (e) {
    if (current()) mount(target, h("h1", {}, "AWS account"), errorNotice(e, "The account could not be loaded"));
    return;
  }
  if (!current()) return;
  const checks = h("div");
  const commands = onboarding.commands.join("\n");
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
        h("dd", { class: "mono" }, onboarding.sesami_account_id || "—"),
        h("dt", {}, "SESami's event bus"),
        h("dd", { class: "mono" }, onboarding.event_bus_arn || "—"),
        h("dt", {}, "Role ARN"),
        h("dd", { class: "mono" }, account.role_arn || "—"),
      ),
      h("p", { class: "small muted" }, "SESami issued the external ID; your role must require it, so nobody else can make SESami act in your account."),
    ),
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
    h("h2", {}, "3. Check the setup"),
    h(
      "div",
      { class: "panel" },
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: () => checklist(checks) }, "Run the checks again"),
        h("button", { type: "button", class: "secondary", onclick: () => checklist(checks, true) }, "Send a test email too"),
      ),
      checks,
    ),
    h("h2", {}, "Team"),
    h("div", { class: "panel" }, inviteForm()),
    h("h2", {}, "Audit trail"),
    h("div", { class: "panel" }, auditPanel()),
    h("h2", { class: "danger-title" }, "Danger zone"),
    dangerZone(account, () => accountPage(target, route, current)),
  );
  if (account.connected) checklist(checks);
  else mount(checks, h("p", { class: "muted" }, "The checklist runs once the account is connected."));
}
