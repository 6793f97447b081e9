// For a person invited into a team who has not accepted yet: which team, who invited them, with
// which role, and an explicit Accept. Until then SESami refuses them everything else.
import { call, get } from "./api.js";
import { forgetMe } from "./me.js";
import { busy, errorNotice, h, loading, mount, notice } from "./ui.js";

export async function invitationPage(target, route, current) {
  mount(target, loading("Loading your invitation"));
  let invitation;
  try {
    invitation = await get("invitation");
  } catch (e) {
    if (current()) mount(target, h("h1", {}, "Invitation"), errorNotice(e, "No invitation to show"));
    return;
  }
  if (!current()) return;
  const status = h("div", { class: "form-status" });
  const team = invitation.tenant_name || invitation.tenant_id;
  const form = h(
    "form",
    { class: "stack", "aria-label": "Accept the invitation" },
    h(
      "dl",
      { class: "kv" },
      h("dt", {}, "Team"),
      h("dd", { id: "invitation-team" }, team),
      h("dt", {}, "Invited by"),
      h("dd", { id: "invitation-by" }, invitation.invited_by || "—"),
      h("dt", {}, "Your role"),
      h("dd", { id: "invitation-role" }, invitation.role),
      h("dt", {}, "Your login"),
      h("dd", {}, invitation.email || "—"),
    ),
    h("p", { class: "muted small" }, "Accept to see this team's mail and act with this role. Until you do, SESami shows you nothing of it."),
    status,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Accept the invitation")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await busy(form, async () => {
      try {
        const r = await call("POST", "invitation/accept");
        forgetMe();
        mount(status, notice("ok", `Welcome: you joined the team as ${r.role}.`));
        location.hash = "#/";
      } catch (e) {
        mount(status, errorNotice(e, "Not accepted"));
      }
    });
  });
  mount(target, h("h1", {}, "You are invited"), h("div", { class: "panel" }, form));
}
