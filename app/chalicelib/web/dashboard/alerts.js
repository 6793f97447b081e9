// Alerts: the reputation rules (bounce and complaint rate over a window, against SES's lines),
// their state and current rates, the sending pause with its Resume button, and the history.
import { call, get } from "./api.js";
import { busy, errorNotice, field, h, loading, mount, notice, pct, table, when } from "./ui.js";

export function pausedNotice(paused, onResume) {
  const resume = h("button", { type: "button" }, "Resume sending");
  resume.addEventListener("click", async () => {
    try {
      await busy(resume.parentElement, () => call("POST", "alerts/resume"));
      onResume();
    } catch (e) {
      resume.after(errorNotice(e, "Sending was not resumed"));
    }
  });
  return notice(
    "error",
    h("strong", {}, "Sending is paused. "),
    `SESami's alert ${paused.alert_id} (${paused.label || paused.rule} at ${pct(paused.value)}) paused it ${when(paused.since)}; sends are refused until an admin resumes. `,
    resume,
  );
}

function ruleForm(rule, reload) {
  const threshold = h("input", { type: "number", step: "0.01", min: "0.01", max: "100", value: String(+(rule.threshold * 100).toFixed(3)) });
  const windowHours = h("input", { type: "number", min: "1", max: "168", value: String(rule.window_hours) });
  const minVolume = h("input", { type: "number", min: "1", value: String(rule.min_volume) });
  const autoPause = h("input", { type: "checkbox", checked: rule.auto_pause });
  const enabled = h("input", { type: "checkbox", checked: rule.enabled });
  const status = h("div", {});
  const form = h(
    "form",
    { class: "panel stack", "aria-label": rule.label },
    h("h2", {}, `${rule.label[0].toUpperCase()}${rule.label.slice(1)}: ${rule.state === "firing" ? "firing" : "ok"}`),
    h("p", { class: "muted" }, `Now ${pct(rule.current.value)} (${rule.current.count} of ${rule.current.volume} recipients in ${rule.window_hours} h). Fires at the line, resolves under ${pct(rule.resolve_below)}.`),
    field("Line (%)", threshold),
    field("Window (hours)", windowHours),
    field("Minimum volume", minVolume, "recipients in the window before the rate counts"),
    h("label", {}, autoPause, " Pause sending when it fires (an admin resumes)"),
    h("label", {}, enabled, " Enabled"),
    h("button", { type: "submit" }, "Save"),
    status,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = {
      threshold: Number(threshold.value) / 100,
      window_hours: Number(windowHours.value),
      min_volume: Number(minVolume.value),
      auto_pause: autoPause.checked,
      enabled: enabled.checked,
    };
    try {
      await busy(form, () => call("PUT", `alerts/${rule.name}`, { body }));
      reload();
    } catch (err) {
      mount(status, errorNotice(err, "The rule was not saved"));
    }
  });
  return form;
}

export async function alertsPage(target, route, current) {
  const body = h("div", {}, loading("Loading alerts"));
  mount(target, h("div", { class: "page-head" }, h("h1", {}, "Alerts")), body);
  const reload = () => alertsPage(target, route, current);
  let data;
  try {
    data = await get("alerts");
  } catch (e) {
    if (current()) mount(body, errorNotice(e, "The alerts could not be loaded"));
    return;
  }
  if (!current()) return;
  mount(
    body,
    data.sending_paused ? pausedNotice(data.sending_paused, reload) : null,
    h("p", { class: "muted" }, "Alerts go to your webhook endpoints (alert.fired, alert.resolved) and by email to your admins."),
    h("div", { class: "grid" }, data.rules.map((rule) => ruleForm(rule, reload))),
    h("h2", {}, "History"),
    data.history.length
      ? h(
          "div",
          { class: "panel" },
          table(
            [
              ["When", (x) => when(x.since || x.at)],
              ["What", (x) => `${x.event} ${x.label || x.rule || ""}`],
              ["Rate", (x) => (x.value === undefined ? "—" : pct(x.value))],
              ["Alert", (x) => x.alert_id || "—"],
              ["By", (x) => x.by || "SESami"],
            ],
            data.history,
          ),
        )
      : h("div", { class: "empty" }, "No alert has fired."),
  );
}
