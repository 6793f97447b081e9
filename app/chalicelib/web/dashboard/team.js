// The team: users with their role and last activity, pending invitations; admins change roles,
// remove users (with a confirmation), invite with a role, resend and cancel invitations. What
// the signed-in role cannot do is not shown; SESami refuses it all the same.
import { call, get } from "./api.js";
import { can, me } from "./me.js";
import { busy, empty, errorNotice, field, h, loading, mount, notice, table, when } from "./ui.js";

export const ROLES = [
  ["admin", "Admin — everything, including the AWS account, the team and API keys"],
  ["sender", "Sender — send mail and add suppressions"],
  ["viewer", "Viewer — read only"],
];

const roleSelect = (name, value, extra = {}) =>
  h(
    "select",
    { name, ...extra },
    ROLES.map(([role, label]) => h("option", { value: role, selected: role === value }, extra.short ? role : label)),
  );

function inviteForm(onInvited) {
  const status = h("div", { class: "form-status" });
  const form = h(
    "form",
    { class: "panel stack", "aria-label": "Invite a colleague" },
    h("h2", {}, "Invite a colleague"),
    h(
      "div",
      { class: "grid two" },
      field("Colleague's email", h("input", { type: "email", name: "email", required: true })),
      field("Role", roleSelect("role", "sender")),
    ),
    status,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Send invitation")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const email = data.get("email").trim();
    await busy(form, async () => {
      try {
        await call("POST", "account/users", { body: { email, role: data.get("role") } });
        onInvited(`${email} is invited as ${data.get("role")}: they get an email with a temporary password.`);
      } catch (e) {
        mount(status, errorNotice(e, "Not invited"));
      }
    });
  });
  return form;
}

export async function teamPage(target, route, current, flash) {
  mount(target, loading("Loading the team"));
  let account, team;
  try {
    [account, team] = await Promise.all([me(), get("account/users")]);
  } catch (e) {
    if (current()) mount(target, h("h1", {}, "Team"), errorNotice(e, "The team could not be loaded"));
    return;
  }
  if (!current()) return;
  const admin = can(account, "admin");
  const status = h("div", {}, flash ? notice("ok", flash) : null);
  const reload = (message) => teamPage(target, route, current, message);

  async function act(button, work, done) {
    button.disabled = true;
    try {
      const answer = await work();
      reload(typeof done === "function" ? done(answer) : done);
    } catch (e) {
      button.disabled = false;
      mount(status, errorNotice(e, "Not done"));
    }
  }

  // Removing a person does not revoke the API keys they made: say which are still active.
  const removedNotice = (u, answer) => {
    const keys = (answer && answer.active_keys) || [];
    const who = `${u.email || u.sub} was removed.`;
    if (!keys.length) return who;
    const names = keys.map((k) => `${k.name} (${k.prefix})`).join(", ");
    return `${who} API keys they created are still active: ${names}. Revoke them under API keys if they should stop.`;
  };

  const userActions = (u) => {
    if (!admin) return h("span", { class: "muted small" }, u.role);
    const select = roleSelect("role", u.role, { short: true, "aria-label": `Role of ${u.email || u.sub}`, "data-role-of": u.email || u.sub });
    select.addEventListener("change", () =>
      act(select, () => call("PUT", `account/users/${encodeURIComponent(u.sub)}`, { body: { role: select.value } }), `${u.email} is now ${select.value}.`),
    );
    const remove = h("button", { type: "button", class: "danger", "data-remove-user": u.email || u.sub }, "Remove");
    remove.addEventListener("click", () => {
      if (!confirm(`Remove ${u.email || u.sub} from the team? Their sessions stop working at once.`)) return;
      act(remove, () => call("DELETE", `account/users/${encodeURIComponent(u.sub)}`), (answer) => removedNotice(u, answer));
    });
    return h("div", { class: "actions" }, select, remove);
  };

  const invitationActions = (i) => {
    const address = encodeURIComponent(i.email);
    const resend = h("button", { type: "button", class: "secondary", "data-resend": i.email }, "Resend");
    resend.addEventListener("click", () => act(resend, () => call("POST", `account/invitations/${address}/resend`), `The invitation to ${i.email} was sent again.`));
    const cancel = h("button", { type: "button", class: "danger", "data-cancel": i.email }, "Cancel");
    cancel.addEventListener("click", () => {
      if (!confirm(`Cancel the invitation to ${i.email}?`)) return;
      act(cancel, () => call("DELETE", `account/invitations/${address}`), `The invitation to ${i.email} is cancelled.`);
    });
    return h("div", { class: "actions" }, resend, cancel);
  };

  const users = team.users.length
    ? table(
        [
          ["User", (u) => u.email || u.sub, { class: "wrap" }],
          ["Role", (u) => (admin ? userActions(u) : u.role)],
          ["Last activity", (u) => when(u.last_seen_at)],
          ["Joined", (u) => when(u.created_at)],
        ],
        team.users,
        { className: "team" },
      )
    : empty("Nobody yet.");
  const invitations = team.invitations.length
    ? table(
        [
          ["Email", (i) => i.email, { class: "wrap" }],
          ["Role", (i) => i.role],
          ["Invited by", (i) => i.invited_by || "—", { class: "wrap" }],
          ["Invited", (i) => when(i.invited_at)],
          ...(admin ? [["", invitationActions]] : []),
        ],
        team.invitations,
        { className: "invitations" },
      )
    : empty("No pending invitations.");
  mount(
    target,
    h("div", { class: "page-head" }, h("h1", {}, "Team"), h("span", { class: "muted small" }, `You are ${account.role}`)),
    admin ? null : notice("info", "Only admins can invite colleagues, change roles or remove users."),
    status,
    h("div", { class: "panel" }, h("h2", {}, "Users"), users),
    h("div", { class: "panel" }, h("h2", {}, "Pending invitations"), invitations),
    admin ? inviteForm(reload) : null,
  );
}
