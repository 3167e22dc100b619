// API keys: create (the secret is shown once), list, revoke.
import { api, enc } from "./api.js";
import { act, errorBox, field, h, page, say, table, when } from "./ui.js";

// "ACME:write, FOO:read" -> {"ACME": "write", "FOO": "read"}
function parsePrograms(text) {
  const out = {};
  for (const part of text.split(/[,\s]+/).filter(Boolean)) {
    const [id, access] = part.split(":");
    out[id] = access || "read";
  }
  return out;
}

export async function keysPage() {
  const errors = errorBox();
  const list = h("div", {});
  const secret = h("div", { "aria-live": "polite" });

  async function load() {
    const keys = await api("GET", "/api/keys").catch((err) => { errors.show(err); return []; });
    list.replaceChildren(table("API keys", ["User id", "May", "Created", "Revoked", "Revoke"],
      keys.map((k) => {
        const revoke = h("button", { type: "button", class: "danger", "aria-label": `Revoke ${k.UserId}` }, "Revoke");
        revoke.addEventListener("click", () => {
          if (!confirm(`Revoke key ${k.UserId}? Calls with it stop working.`)) return;
          act(revoke, errors, async () => {
            await api("DELETE", `/api/keys/${enc(k.UserId)}`);
            say(`Key ${k.UserId} revoked.`);
            await load();
          });
        });
        const may = k.System ? "system" : Object.entries(k.Programs).map(([p, a]) => `${p}: ${a}`).join(", ");
        return h("tr", {}, h("th", { scope: "row" }, k.UserId), h("td", {}, may), h("td", {}, when(k.CreatedUtc)),
          h("td", {}, when(k.RevokedUtc)), h("td", {}, k.RevokedUtc ? "—" : revoke));
      })));
  }

  const formErrors = errorBox();
  const kind = h("select", { name: "kind" }, h("option", { value: "programs" }, "Program key"), h("option", { value: "system" }, "System key"));
  const programs = h("input", { name: "Programs", autocomplete: "off", spellcheck: "false" });
  const submit = h("button", { type: "submit" }, "Create key");
  const form = h("form", { class: "form", "aria-labelledby": "key-form-title" },
    h("h2", { id: "key-form-title" }, "New key"),
    field("Kind", kind),
    field("Programs and access", programs, "program:read or program:write, separated by commas, such as ACME:write, FOO:read"),
    formErrors.el, h("div", { class: "buttons" }, submit));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    act(submit, formErrors, async () => {
      const body = kind.value === "system" ? { System: true } : { Programs: parsePrograms(programs.value) };
      const made = await api("POST", "/api/keys", body);
      const text = `${made.UserId}:${made.ApiKey}`;
      const out = h("output", { class: "secret", id: "new-key" }, text);
      secret.replaceChildren(h("div", { class: "notice" },
        h("h2", {}, "New key (shown once)"),
        h("p", {}, "Copy it now: the hub keeps only its hash and cannot show it again."),
        out,
        h("div", { class: "buttons" },
          h("button", { type: "button", onclick: () => navigator.clipboard && navigator.clipboard.writeText(text) }, "Copy"),
          h("button", { type: "button", class: "secondary", onclick: () => secret.replaceChildren() }, "I have copied it"))));
      programs.value = "";
      await load();
    });
  });

  await load();
  return page("API keys", errors.el, secret, form, list);
}
