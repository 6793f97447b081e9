// Sign in, sign up (with the emailed confirmation code), invited users' first password, reset.
import { auth, session } from "./api.js";
import { busy, errorNotice, field, h, mount, notice } from "./ui.js";

const input = (name, type, extra = {}) => h("input", { name, type, required: true, ...extra });

function frame(target, title, form, ...after) {
  mount(
    target,
    h(
      "div",
      { class: "auth" },
      h("span", { class: "brand" }, "SES", h("span", {}, "ami")),
      h("div", { class: "panel" }, h("h1", {}, title), form),
      ...after,
    ),
  );
}

function formOf(fields, submitLabel, onSubmit) {
  const status = h("div", { class: "form-status" });
  const form = h("form", { class: "stack", novalidate: false }, fields, status, h("button", { type: "submit" }, submitLabel));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    mount(status);
    await busy(form, async () => {
      try {
        await onSubmit(data, status);
      } catch (e) {
        mount(status, errorNotice(e, "Not done"));
      }
    });
  });
  return form;
}

function signedIn(tokens, email) {
  session.save(tokens, email);
  location.hash = "#/";
}

function signIn(target, params) {
  const email = params.get("email") || "";
  const form = formOf(
    [
      field("Email", input("email", "email", { autocomplete: "username", value: email })),
      field("Password", input("password", "password", { autocomplete: "current-password" })),
    ],
    "Sign in",
    async ({ email, password }, status) => {
      const result = await auth("sign-in", { email, password });
      if (result.challenge === "NEW_PASSWORD_REQUIRED") {
        newPassword(target, email, result.session);
        return;
      }
      if (result.challenge === "SOFTWARE_TOKEN_MFA") {
        mfaCode(target, email, result.session);
        return;
      }
      signedIn(result, email);
      mount(status);
    },
  );
  frame(
    target,
    "Sign in",
    form,
    params.get("confirmed") ? notice("ok", "Your account is confirmed. Sign in to continue.") : null,
    params.get("reset") ? notice("ok", "Your password is changed. Sign in with it.") : null,
    h(
      "p",
      { class: "alt" },
      h("a", { href: "#/sign-up" }, "Create an account"),
      " · ",
      h("a", { href: `#/forgot${email ? "?email=" + encodeURIComponent(email) : ""}` }, "Forgot password?"),
    ),
  );
}

function mfaCode(target, email, challengeSession) {
  const form = formOf(
    [field("Code from your authenticator app", input("code", "text", { autocomplete: "one-time-code", inputmode: "numeric" }))],
    "Sign in",
    async ({ code }) => {
      signedIn(await auth("mfa-code", { email, session: challengeSession, code: code.trim() }), email);
    },
  );
  frame(target, "Two-step sign-in", form);
}

function newPassword(target, email, challengeSession) {
  const form = formOf(
    [
      h("p", { class: "muted small" }, `Welcome, ${email}. You were invited with a temporary password: choose your own.`),
      field("New password", input("password", "password", { autocomplete: "new-password", minlength: 8 })),
    ],
    "Set password and sign in",
    async ({ password }) => {
      signedIn(await auth("new-password", { email, session: challengeSession, password }), email);
    },
  );
  frame(target, "Choose a password", form);
}

function signUp(target) {
  const form = formOf(
    [
      field("Work email", input("email", "email", { autocomplete: "email" })),
      field(
        "Password",
        input("password", "password", { autocomplete: "new-password", minlength: 8 }),
        "At least 8 characters, with upper and lower case letters, a digit and a symbol.",
      ),
    ],
    "Create account",
    async ({ email, password }) => {
      const result = await auth("sign-up", { email, password });
      const next = new URLSearchParams({ email: result.email || email });
      if (result.code_sent_to) next.set("to", result.code_sent_to);
      location.hash = result.confirmed ? `#/sign-in?${next}` : `#/confirm?${next}`;
    },
  );
  frame(
    target,
    "Create your SESami account",
    form,
    h("p", { class: "alt" }, "Already have an account? ", h("a", { href: "#/sign-in" }, "Sign in")),
  );
}

function confirm(target, params) {
  const email = params.get("email") || "";
  const sentTo = params.get("to") || email;
  const resend = h("button", { type: "button", class: "link-button" }, "Send a new code");
  const form = formOf(
    [
      h("p", { class: "muted small" }, `We emailed a confirmation code to ${sentTo}.`),
      field("Email", input("email", "email", { value: email, autocomplete: "username" })),
      field("Confirmation code", input("code", "text", { inputmode: "numeric", autocomplete: "one-time-code", maxlength: 16 })),
    ],
    "Confirm",
    async ({ email, code }) => {
      await auth("confirm", { email, code });
      location.hash = `#/sign-in?${new URLSearchParams({ email, confirmed: "1" })}`;
    },
  );
  resend.addEventListener("click", async () => {
    const status = form.querySelector(".form-status");
    const address = form.elements.email.value;
    try {
      const result = await auth("resend-code", { email: address });
      mount(status, notice("ok", `A new code is on its way to ${result.code_sent_to || address}.`));
    } catch (e) {
      mount(status, errorNotice(e, "No new code"));
    }
  });
  frame(target, "Confirm your email", form, h("p", { class: "alt" }, resend, " · ", h("a", { href: "#/sign-in" }, "Sign in")));
}

function forgot(target, params) {
  const form = formOf(
    [field("Email", input("email", "email", { value: params.get("email") || "", autocomplete: "username" }))],
    "Email me a code",
    async ({ email }) => {
      await auth("forgot-password", { email });
      location.hash = `#/reset?${new URLSearchParams({ email })}`;
    },
  );
  frame(target, "Reset your password", form, h("p", { class: "alt" }, h("a", { href: "#/sign-in" }, "Back to sign in")));
}

function reset(target, params) {
  const email = params.get("email") || "";
  const form = formOf(
    [
      h("p", { class: "muted small" }, `If ${email || "the address"} has an account, a code is on its way.`),
      field("Email", input("email", "email", { value: email, autocomplete: "username" })),
      field("Code", input("code", "text", { inputmode: "numeric", autocomplete: "one-time-code", maxlength: 16 })),
      field("New password", input("password", "password", { autocomplete: "new-password", minlength: 8 })),
    ],
    "Change password",
    async ({ email, code, password }) => {
      await auth("reset-password", { email, code, password });
      location.hash = `#/sign-in?${new URLSearchParams({ email, reset: "1" })}`;
    },
  );
  frame(target, "Choose a new password", form);
}

export function authPage(target, route) {
  const pages = { "sign-in": signIn, "sign-up": signUp, confirm, forgot, reset };
  (pages[route.name] || signIn)(target, route.params);
}
