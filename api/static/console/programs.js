// Programs: list, create, and edit the LB connection (the LB key is write-only).
import { api, enc } from "./api.js";
import { act, errorBox, field, h, page, say, table, when } from "./ui.js";

export async function programsPage() {
  const errors = errorBox();
  const list = h("div", {});
  const editor = h("div", {});

  async function load() {
    const programs = await api("GET", "/api/programs").catch((err) => { errors.show(err); return []; });
    list.replaceChildren(table("Programs", ["Program", "Name", "LB base URL", "LB key", "Creation path", "Updated", "Open"],
      programs.map((p) => h("tr", {},
        h("th", { scope: "row" }, p.ProgramId),
        h("td", {}, p.Name),
        h("td", { class: "wrap" }, p.LbBaseUrl || "—"),
        h("td", {}, p.LbApiKeySet ? "set" : "not set"),
        h("td", {}, p.CreationPath),
        h("td", {}, when(p.UpdatedUtc)),
        h("td", { class: "actions" },
          h("button", { type: "button", onclick: () => showForm(p), "aria-label": `Edit ${p.ProgramId}` }, "Edit"),
          h("a", { href: `#/programs/${enc(p.ProgramId)}/subscriptions` }, "Subscriptions"),
          h("a", { href: `#/programs/${enc(p.ProgramId)}/history` }, "Sync history"),
          h("a", { href: `#/events/${enc(p.ProgramId)}` }, "Events"))))));
  }

  function showForm(existing) {
    const formErrors = errorBox();
    const id = h("input", { name: "ProgramId", required: true, maxlength: 25, autocomplete: "off", value: existing ? existing.ProgramId : "", readonly: !!existing });
    const name = h("input", { name: "Name", required: true, maxlength: 200, value: existing ? existing.Name : "" });
    const url = h("input", { name: "LbBaseUrl", type: "url", value: existing && existing.LbBaseUrl ? existing.LbBaseUrl : "" });
    const key = h("input", { name: "LbApiKey", type: "password", autocomplete: "new-password", spellcheck: "false" });
    const clearKey = h("input", { type: "checkbox", name: "clearKey" });
    const path = h("input", { name: "CreationPath", value: existing ? existing.CreationPath : "LH", maxlength: 15 });
    const ok = h("input", { name: "SendSuccessEmailTo", value: existing && existing.SendSuccessEmailTo ? existing.SendSuccessEmailTo : "" });
    const fail = h("input", { name: "SendFailureEmailTo", value: existing && existing.SendFailureEmailTo ? existing.SendFailureEmailTo : "" });
    const submit = h("button", { type: "submit" }, existing ? "Save program" : "Create program");
    const form = h("form", { class: "form", "aria-labelledby": "program-form-title" },
      h("h2", { id: "program-form-title" }, existing ? `Edit ${existing.ProgramId}` : "New program"),
      field("Program id", id, "1–25 characters of A-Z a-z 0-9 _ - ."),
      field("Name", name),
      field("LB base URL", url, "such as https://lb.example.com"),
      field("LB API key", key, existing && existing.LbApiKeySet ? "A key is stored; leave empty to keep it. It is never shown." : "Write-only: it is never shown again."),
      existing && existing.LbApiKeySet ? h("div", { class: "field check" }, clearKey, h("label", { for: clearKey.id = "clear-lb-key" }, "Forget the stored LB key")) : null,
      field("Creation path", path),
      field("Success e-mails", ok, "addresses separated by , or ;"),
      field("Failure e-mails", fail),
      formErrors.el,
      h("div", { class: "buttons" }, submit, h("button", { type: "button", class: "secondary", onclick: () => editor.replaceChildren() }, "Cancel")));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      act(submit, formErrors, async () => {
        const body = { Name: name.value, CreationPath: path.value || "LH" };
        if (url.value.trim()) body.LbBaseUrl = url.value.trim();
        if (key.value) body.LbApiKey = key.value;
        else if (clearKey.checked) body.LbApiKey = null;
        if (ok.value.trim()) body.SendSuccessEmailTo = ok.value.trim();
        if (fail.value.trim()) body.SendFailureEmailTo = fail.value.trim();
        await api("PUT", `/api/programs/${enc(id.value.trim())}`, body);
        key.value = "";
        editor.replaceChildren();
        say(`Program ${id.value.trim()} saved.`);
        await load();
      });
    });
    editor.replaceChildren(form);
    (existing ? name : id).focus();
  }

  await load();
  return page("Programs",
    h("div", { class: "buttons" }, h("button", { type: "button", onclick: () => showForm(null) }, "New program")),
    errors.el, editor, list);
}
