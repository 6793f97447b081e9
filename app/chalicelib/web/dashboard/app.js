// SESami dashboard: a hash router over the pages, the signed-in shell, and sign-out.
import { auth, hooks, isInvitee, resume, session } from "./api.js";
import { accountPage } from "./account.js";
import { activityPage } from "./activity.js";
import { alertsPage } from "./alerts.js";
import { authPage } from "./auth.js";
import { invitationPage } from "./invitation.js";
import { keysPage } from "./keys.js";
import { identitiesPage } from "./identities.js";
import { linksPage } from "./links.js";
import { can, forgetMe, me } from "./me.js";
import { messagePage, recipientPage } from "./message.js";
import { overviewPage } from "./overview.js";
import { parseHash } from "./router.js";
import { sendPage } from "./send.js";
import { suppressionPage } from "./suppression.js";
import { teamPage } from "./team.js";
import { templatesPage } from "./templates.js";
import { h, mount } from "./ui.js";
import { webhooksPage } from "./webhooks.js";

const PUBLIC = new Set(["sign-in", "sign-up", "confirm", "forgot", "reset"]);
const PAGES = {
  "": [overviewPage, "overview", "Overview"],
  activity: [activityPage, "activity", "Email activity"],
  message: [messagePage, "activity", "Message"],
  recipient: [recipientPage, "activity", "Recipient"],
  links: [linksPage, "links", "Links"],
  suppression: [suppressionPage, "suppression", "Suppression list"],
  send: [sendPage, "send", "Send"],
  webhooks: [webhooksPage, "webhooks", "Webhooks"],
  alerts: [alertsPage, "alerts", "Alerts"],
  templates: [templatesPage, "templates", "Templates"],
  identities: [identitiesPage, "identities", "Identities"],
  account: [accountPage, "account", "AWS account"],
  team: [teamPage, "team", "Team"],
  keys: [keysPage, "keys", "API keys"],
  invitation: [invitationPage, "", "Invitation"],
};

/** Show only the menu entries the role may use (data-needs="<permission>"); an invitee sees
 * none until they accept. The server refuses the rest whatever the menu shows. */
async function fitMenu(invited) {
  const links = [...document.querySelectorAll("#nav a")];
  if (invited) {
    links.forEach((a) => (a.hidden = true));
    return;
  }
  try {
    const account = await me();
    links.forEach((a) => (a.hidden = Boolean(a.dataset.needs) && !can(account, a.dataset.needs)));
  } catch (e) {
    if (isInvitee(e)) links.forEach((a) => (a.hidden = true));
    else links.forEach((a) => (a.hidden = false));
  }
}

let generation = 0;

async function render() {
  const route = parseHash();
  if (!PUBLIC.has(route.name)) await resume();
  const shell = document.getElementById("shell");
  const publicMain = document.getElementById("public");
  const signedIn = Boolean(session.get());
  if (PUBLIC.has(route.name) || !signedIn) {
    if (!PUBLIC.has(route.name)) {
      location.replace("#/sign-in");
      return;
    }
    shell.hidden = true;
    publicMain.hidden = false;
    document.title = "SESami — sign in";
    authPage(publicMain, route);
    return;
  }
  const [page, nav, title] = PAGES[route.name] || [];
  shell.hidden = false;
  publicMain.hidden = true;
  document.getElementById("who-email").textContent = session.get().email || "";
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === nav);
  fitMenu(route.name === "invitation");
  document.getElementById("nav").classList.remove("open");
  document.getElementById("menu-toggle").setAttribute("aria-expanded", "false");
  const main = document.getElementById("main");
  if (!page) {
    mount(main, h("h1", {}, "Not found"), h("p", {}, "No such page. ", h("a", { href: "#/" }, "Back to the overview")));
    return;
  }
  document.title = `SESami — ${title}`;
  const mine = ++generation;
  // A page renders into its own container; if the user navigates away first, its late results
  // land in a detached node instead of the new page.
  const container = h("div", { class: "page", "data-page": route.name || "overview" });
  mount(main, container);
  try {
    await page(container, route, () => mine === generation);
  } catch (e) {
    if (mine === generation) console.error(e);
  }
}

async function signOut() {
  const s = session.get();
  session.clear();
  forgetMe();
  if (s && s.access_token) {
    try {
      await auth("sign-out", { access_token: s.access_token });
    } catch {
      /* the tokens are dropped locally either way */
    }
  }
  location.hash = "#/sign-in";
}

hooks.signedOut = () => {
  forgetMe();
  if (!PUBLIC.has(parseHash().name)) location.hash = "#/sign-in";
};
// SESami refused a call because the signed-in person has not accepted their invitation yet.
hooks.invited = () => {
  if (parseHash().name !== "invitation") location.hash = "#/invitation";
};

document.getElementById("sign-out").addEventListener("click", signOut);
document.getElementById("menu-toggle").addEventListener("click", (e) => {
  const nav = document.getElementById("nav");
  nav.classList.toggle("open");
  e.currentTarget.setAttribute("aria-expanded", String(nav.classList.contains("open")));
});
window.addEventListener("hashchange", render);
render();
