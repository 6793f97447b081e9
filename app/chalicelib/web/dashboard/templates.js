// Stored templates: the list, and an editor (draft, publish, versions, delete) with a preview
// rendered by the API with sample variables: the HTML in a sandboxed frame, like sent mail.
import { call, get } from "./api.js";
import { busy, empty, errorNotice, field, h, loading, mount, notice, table, when } from "./ui.js";

const STARTER = {
  name: "Welcome",
  subject: "Welcome, {{first_name}}",
  html: '<p>Hi {{first_name}},</p>\n<p>Thanks for joining{{#company}} from {{company}}{{/company}}.</p>',
  text: "Hi {{first_name}},\nThanks for joining.",
  sample_variables: { first_name: "Ada", company: "Analytical Engines" },
};

export async function templatesPage(target, route, current) {
  if (route.arg) return editorPage(target, route.arg, current);
  mount(target, loading("Loading the templates"));
  let list;
  try {
    list = await get("templates");
  } catch (e) {
    if (current()) mount(target, h("h1", {}, "Templates"), errorNotice(e, "The templates could not be loaded"));
    return;
  }
  if (!current()) return;
  const status = h("div");
  const create = h(
    "button",
    {
      type: "button",
      onclick: async (event) => {
        await busy(event.currentTarget.parentElement, async () => {
          try {
            const made = await call("POST", "templates", { body: STARTER });
            location.hash = `#/templates/${made.template_id}`;
          } catch (e) {
            mount(status, errorNotice(e, "Not created"));
          }
        });
      },
    },
    "New template",
  );
  mount(
    target,
    h("div", { class: "page-head" }, h("h1", {}, "Templates"), h("div", { class: "actions" }, create)),
    h(
      "p",
      { class: "muted" },
      "Mustache templates: {{name}} placeholders and {{#name}}…{{/name}} sections, values HTML-escaped in the HTML part. ",
      "Send with POST /mail or /mail/bulk and template_id; a send uses the latest published version unless it names one.",
    ),
    status,
    h(
      "div",
      { class: "panel" },
      list.items.length
        ? table(
            [
              ["Name", (t) => h("a", { href: `#/templates/${t.template_id}` }, t.name), { class: "wrap" }],
              ["Published", (t) => (t.latest_version ? `version ${t.latest_version}` : "not yet")],
              ["Updated", (t) => when(t.updated_at)],
              ["By", (t) => t.updated_by, { class: "wrap small" }],
            ],
            list.items,
          )
        : empty("No templates yet."),
    ),
  );
}

async function editorPage(target, id, current) {
  mount(target, loading("Loading the template"));
  let t;
  try {
    t = await get(`templates/${encodeURIComponent(id)}`);
  } catch (e) {
    if (current()) mount(target, h("h1", {}, "Template"), errorNotice(e, "The template could not be loaded"));
    return;
  }
  if (!current()) return;
  let revision = t.draft.revision;
  const status = h("div", { class: "form-status" });
  const vars = h("p", { class: "small muted" });
  const preview = h("div", { class: "stack" });
  const frame = h("iframe", { class: "mail-frame", title: "Preview (sandboxed)", sandbox: "", referrerpolicy: "no-referrer" });
  const input = (name, value, attrs = {}) => h("input", { name, value: value || "", ...attrs });
  const area = (name, value, rows) => {
    const el = h("textarea", { name, rows, class: "mono" });
    el.value = value || "";
    return el;
  };
  const form = h(
    "form",
    { class: "panel stack", "aria-label": "Edit the draft" },
    field("Name", input("name", t.name, { required: true, maxlength: 100 })),
    field("Subject", input("subject", t.draft.subject, { required: true, maxlength: 998 })),
    field("HTML", area("html", t.draft.html, 10)),
    field("Text", area("text", t.draft.text, 5)),
    field("Sample variables (JSON)", area("sample_variables", JSON.stringify(t.draft.sample_variables || {}, null, 2), 4), "What the preview renders with."),
    status,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit" }, "Save draft"),
      h("button", { type: "button", class: "secondary", "data-action": "publish" }, "Publish"),
      h("button", { type: "button", class: "danger", "data-action": "delete" }, "Delete"),
    ),
  );
  const versions = h("div", { class: "panel" });

  function show(template) {
    revision = template.draft.revision;
    t = template;
    mount(vars, `Variables: ${template.draft.variables.join(", ") || "none"}`, template.draft.sections.length ? ` · sections: ${template.draft.sections.join(", ")}` : "");
    if (template.draft.preview_url) frame.src = template.draft.preview_url;
    mount(
      versions,
      template.versions.length
        ? table(
            [
              ["Version", (v) => `${v.version}`],
              ["Published", (v) => when(v.published_at)],
              ["By", (v) => v.published_by, { class: "wrap small" }],
            ],
            template.versions,
          )
        : empty("Not published yet: sends need a published version."),
    );
  }

  async function renderPreview() {
    try {
      const r = await call("POST", `templates/${encodeURIComponent(id)}/preview`, { body: {} });
      mount(
        preview,
        h("div", {}, h("strong", {}, "Subject: "), r.subject),
        r.missing.length ? notice("warn", `Missing sample variables (rendered empty): ${r.missing.join(", ")}`) : null,
        r.text !== null ? h("pre", { class: "mail-text" }, r.text) : null,
      );
    } catch (e) {
      mount(preview, errorNotice(e, "No preview"));
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    let sample;
    try {
      sample = JSON.parse(data.get("sample_variables") || "{}");
    } catch {
      mount(status, notice("error", "Sample variables must be a JSON object."));
      return;
    }
    const body = {
      name: data.get("name"),
      subject: data.get("subject"),
      html: data.get("html") || null,
      text: data.get("text") || null,
      sample_variables: sample,
      revision,
    };
    await busy(form, async () => {
      try {
        show(await call("PUT", `templates/${encodeURIComponent(id)}`, { body }));
        mount(status, notice("ok", "Draft saved."));
        await renderPreview();
      } catch (e) {
        mount(status, errorNotice(e, "Not saved"));
      }
    });
  });
  form.querySelector("[data-action=publish]").addEventListener("click", async () => {
    await busy(form, async () => {
      try {
        const v = await call("POST", `templates/${encodeURIComponent(id)}/versions`);
        mount(status, notice("ok", `Published version ${v.version}.`));
        show(await get(`templates/${encodeURIComponent(id)}`));
      } catch (e) {
        mount(status, errorNotice(e, "Not published"));
      }
    });
  });
  form.querySelector("[data-action=delete]").addEventListener("click", async () => {
    if (!confirm(`Delete the template "${t.name}" and all its versions?`)) return;
    await busy(form, async () => {
      try {
        await call("DELETE", `templates/${encodeURIComponent(id)}`);
        location.hash = "#/templates";
      } catch (e) {
        mount(status, errorNotice(e, "Not deleted"));
      }
    });
  });

  mount(
    target,
    h("p", { class: "small" }, h("a", { href: "#/templates" }, "← Templates")),
    h("div", { class: "page-head" }, h("h1", {}, t.name), h("span", { class: "mono small" }, id)),
    vars,
    h(
      "div",
      { class: "grid two" },
      h("div", {}, h("h2", {}, "Draft"), form),
      h("div", {}, h("h2", {}, "Preview"), h("div", { class: "panel stack" }, preview, frame), h("h2", {}, "Versions"), versions),
    ),
  );
  show(t);
  await renderPreview();
}
