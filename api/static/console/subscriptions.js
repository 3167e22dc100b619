// A program's subscriptions: create, pause/resume (SyncEnabled), replay from a time
// (LastSyncUtc), OnRenderError; the dry run of the next sync and a real sync.
import { api, enc } from "./api.js";
import { act, errorBox, field, h, json, page, say, table, when } from "./ui.js";
import { syncSummary } from "./history.js";

// A datetime-local value (the browser's local time) as UTC ISO text.
function toUtc(local) {
  return new Date(local).toISOString();
}

export async function subscriptionsPage(programId) {
  const base = `/api/programs/${enc(programId)}/eventSubs`;
  const errors = errorBox();
  const list = h("div", {});
  const runOut = h("div", { "aria-live": "polite" });

  async function patch(pub, body, button, message) {
    await act(button, errors, async () => {
      await api("PATCH", `${base}/${enc(pub)}`, body);
      say(message);
      await load();
    });
  }

  function row(s) {
    const pub = s.PublisherProgramId;
    const toggle = h("button", { type: "button", "aria-label": `${s.SyncEnabled ? "Pause" : "Resume"} ${pub}` }, s.SyncEnabled ? "Pause" : "Resume");
    toggle.addEventListener("click", () => patch(pub, { SyncEnabled: !s.SyncEnabled }, toggle, `${pub}: ${s.SyncEnabled ? "paused" : "resumed"}.`));
    const policy = h("select", { "aria-label": `On render error for ${pub}` },
      h("option", { value: "stop", selected: s.OnRenderError === "stop" }, "stop"),
      h("option", { value: "park", selected: s.OnRenderError === "park" }, "park"));
    policy.addEventListener("change", () => patch(pub, { OnRenderError: policy.value }, policy, `${pub}: on render error, ${policy.value}.`));
    const from = h("input", { type: "datetime-local", step: "1", "aria-label": `Replay ${pub} from (local time)` });
    const replay = h("button", { type: "button", "aria-label": `Replay ${pub} from the time given` }, "Replay");
    replay.addEventListener("click", () => {
      if (!from.value) { errors.show(new Error("Pick the time to replay from.")); return; }
      patch(pub, { LastSyncUtc: toUtc(from.value) }, replay, `${pub}: the next sync delivers events from ${toUtc(from.value)}.`);
    });
    const remove = h("button", { type: "button", class: "danger", "aria-label": `Delete subscription to ${pub}` }, "Delete");
    remove.addEventListener("click", () => {
      if (!confirm(`Delete the subscription of ${programId} to ${pub}?`)) return;
      act(remove, errors, async () => { await api("DELETE", `${base}/${enc(pub)}`); say(`Subscription to ${pub} deleted.`); await load(); });
    });
    return h("tr", {},
      h("th", { scope: "row" }, pub),
      h("td", {}, s.SyncEnabled ? "syncing" : "paused", " ", toggle),
      h("td", {}, when(s.LastSyncUtc), h("div", { class: "inline" }, from, replay)),
      h("td", {}, policy),
      h("td", {}, s.LbApiPayloadTemplate === null ? "none yet" : "set"),
      h("td", { class: "actions" },
        h("a", { href: `#/programs/${enc(programId)}/subscriptions/${enc(pub)}/template` }, `Template of ${pub}`),
        remove));
  }

  async function load() {
    const subs = await api("GET", base).catch((err) => { errors.show(err); return []; });
    const items = Array.isArray(subs) ? subs : subs.Subscriptions || [];
    list.replaceChildren(table(`Subscriptions of ${programId}`, ["Publisher", "Sync", "Last sync (replay from)", "On render error", "Template", "Open"], items.map(row)));
  }

  const formErrors = errorBox();
  const pub = h("input", { name: "PublisherProgramId", required: true, maxlength: 25, autocomplete: "off" });
  const policy = h("select", { name: "OnRenderError" }, h("option", { value: "stop" }, "stop the subscription"), h("option", { value: "park" }, "park the event"));
  const enabled = h("input", { type: "checkbox", name: "SyncEnabled", id: "new-sub-enabled" });
  const submit = h("button", { type: "submit" }, "Create subscription");
  const form = h("form", { class: "form", "aria-labelledby": "sub-form-title" },
    h("h2", { id: "sub-form-title" }, "New subscription"),
    field("Publisher program", pub),
    field("When an event cannot be rendered", policy),
    h("div", { class: "field check" }, enabled, h("label", { for: "new-sub-enabled" }, "Sync enabled")),
    formErrors.el, h("div", { class: "buttons" }, submit));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    act(submit, formErrors, async () => {
      await api("POST", base, { PublisherProgramId: pub.value.trim(), OnRenderError: policy.value, SyncEnabled: enabled.checked });
      const made = pub.value.trim();
      pub.value = "";
      say(`Subscription to ${made} created; write its template next.`);
      await load();
    });
  });

  const dry = h("button", { type: "button", id: "dry-run" }, "Dry run of the next sync");
  dry.addEventListener("click", () => act(dry, errors, async () => {
    const plan = await api("POST", "/api/processEvents", undefined, { programId, dryRun: "true" });
    runOut.replaceChildren(h("h2", { id: "dry-run-result" }, "Dry run: what the next sync would send"), syncSummary(plan, true), h("details", {}, h("summary", {}, "The whole answer"), json(plan)));
  }));
  const sync = h("button", { type: "button", id: "sync-now", class: "secondary" }, "Sync now");
  sync.addEventListener("click", () => {
    if (!confirm(`Send ${programId}'s new events to its LearningBuilder now?`)) return;
    act(sync, errors, async () => {
      const done = await api("POST", "/api/processEvents", undefined, { programId });
      runOut.replaceChildren(h("h2", { id: "sync-result" }, `Sync ${done.SyncId}`), syncSummary(done, false));
      await load();
    });
  });

  await load();
  return page(`Subscriptions of ${programId}`,
    h("p", {}, h("a", { href: `#/programs/${enc(programId)}/history` }, `Sync history of ${programId}`)),
    errors.el,
    h("div", { class: "buttons" }, dry, sync),
    runOut, list, form);
}
