// The AWS account: the external ID SESami issued, the commands to run the onboarding stack, the
// role ARN form that connects the account, and the setup checklist. Connecting, the onboarding
// commands and the test email are an admin's: other roles see the account and the checklist.
// Admins also pick the display settings (which open and click rates the overview leads with),
// read the audit trail and have the danger zone (disconnect, delete the tenant: lifecycle.js).
import { auth, call, get, session } from "./api.js";
import { auditPanel, dangerZone } from "./lifecycle.js";
import { can } from "./me.js";
import { busy, copyButton, download, errorNotice, field, h, loading, mount, notice } from "./ui.js";

const CHECK_LABELS = { ok: "OK", failed: "Failed", not_checked: "Not checked" };

// The ready-to-run stack: the onboarding program with this tenant's values, as a zip.
async function downloadStack(button) {
  button.disabled = true;
  try {
    const stack = await get("account/onboarding/stack");
    const bytes = Uint8Array.from(atob(stack.content_base64), (c) => c.charCodeAt(0));
    download(stack.filename, new Blob([bytes], { type: stack.content_type }));
  } catch (error) {
    button.after(errorNotice(error, "the onboarding stack"));
  } finally {
    button.disabled = false;
  }
}

function checklist(target, canary = false) {
  const box = h("div", {}, loading(canary ? "Sending a test email and checking" : "Checking your setup"));
  mount(target, box);
  (canary ? call("POST", "verify-sts/canary") : get("verify-sts"))
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

function settingsForm(settings) {
  const status = h("div", { class: "form-status" });
  const rate = h(
    "select",
    { name: "overview_rate" },
    h("option", { value: "human", selected: settings.overview_rate !== "raw" }, "People's opens and clicks only"),
    h("option", { value: "raw", selected: settings.overview_rate === "raw" }, "Every open and click (raw)"),
  );
  const tags = h("input", { name: "indexed_tags", value: (settings.indexed_tags || []).join(", "), placeholder: "campaign" });
  const form = h(
    "form",
    { class: "stack", "aria-label": "Display settings" },
    field(
      "The overview leads with",
      rate,
      "Both rates are always shown; this picks the big number. Machines (Apple's prefetch, security scanners) inflate the raw rates.",
    ),
    field(
      "Indexed tags",
      tags,
      "Up to three tag names, comma-separated (e.g. campaign). Filtering the activity by one of them reads only its events, from the time it is indexed on; other tags are found too, with more reads.",
    ),
    status,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "secondary" }, "Save settings")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await busy(form, async () => {
      try {
        const indexed = tags.value.split(",").map((t) => t.trim()).filter(Boolean);
        const saved = await call("PUT", "account/settings", { body: { overview_rate: rate.value, indexed_tags: indexed } });
        const lead = saved.overview_rate === "raw" ? "The overview leads with the raw rates." : "The overview leads with people's rates.";
        const named = saved.indexed_tags.length ? ` Indexed tags: ${saved.indexed_tags.join(", ")}.` : " No tag is indexed.";
        mount(status, notice("ok", lead + named));
      } catch (e) {
        mount(status, errorNotice(e, "Not saved"));
      }
    });
  });
  return form;
}

// Two-step sign-in with an authenticator app (TOTP): where the operator requires it, admins
// need it to act as admins.
function mfaPanel() {
  const status = h("div");
  const start = h("button", { type: "button", class: "secondary" }, "Set up an authenticator app");
  start.addEventListener("click", async () => {
    const accessToken = (session.get() || {}).access_token;
    try {
      const setup = await auth("mfa/setup", { access_token: accessToken });
      const form = h(
        "form",
        {},
        h("p", {}, "Add this key to your authenticator app (or open the link on your phone), then enter the code it shows."),
        h("pre", { class: "commands" }, setup.secret_code),
        h("p", { class: "small" }, h("a", { href: setup.otpauth_uri }, "Open in an authenticator app")),
        field("Code", h("input", { name: "code", required: true, autocomplete: "one-time-code", inputmode: "numeric" })),
        h("div", { class: "actions" }, h("button", { type: "submit" }, "Turn on two-step sign-in")),
      );
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        const code = String(new FormData(form).get("code")).trim();
        await busy(form, async () => {
          try {
            await auth("mfa/verify", { access_token: accessToken, code });
            mount(status, notice("ok", "Two-step sign-in is on: sign-ins now ask for the app's code."));
          } catch (error) {
            form.append(errorNotice(error, "Not turned on"));
          }
        });
      });
      mount(status, form);
    } catch (error) {
      mount(status, errorNotice(error, "The authenticator app could not be set up"));
    }
  });
  return h("div", {}, h("p", { class: "muted small" }, "Ask for a code from an authenticator app at every sign-in."), start, status);
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
            h("p", {}, "Download the stack with your values filled in, then: unzip it, ", h("code", {}, "pulumi stack init sesami"), ", ", h("code", {}, "pulumi up"), "."),
            h("div", { class: "actions" }, h("button", { type: "button", onclick: (e) => downloadStack(e.currentTarget) }, "Download the ready-to-run stack")),
            h("p", { class: "muted small" }, "Or configure the program from the repository yourself:"),
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
    h("h2", {}, "Security"),
    h("div", { class: "panel" }, mfaPanel()),
    h("h2", {}, "Display"),
    h("div", { class: "panel" }, admin ? settingsForm(account.settings || {}) : h("p", { class: "muted" }, "The overview leads with ", (account.settings || {}).overview_rate === "raw" ? "every open and click (raw)" : "people's opens and clicks", "; an admin can change it.")),
    admin ? h("h2", {}, "Audit trail") : null,
    admin ? h("div", { class: "panel" }, auditPanel()) : null,
    admin ? h("h2", { class: "danger-title" }, "Danger zone") : null,
    admin ? dangerZone(account, () => accountPage(target, route, current)) : null,
  );
  if (account.connected) checklist(checks);
  else mount(checks, h("p", { class: "muted" }, "The checklist runs once the account is connected."));
}
