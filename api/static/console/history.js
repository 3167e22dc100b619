// Sync history from the ledger (each sync, each batch, LB's answer, resent and parked
// events) and the parked events of each subscription, with redeliver and drop.
import { api, enc } from "./api.js";
import { act, errorBox, h, page, say, table, when } from "./ui.js";

// The per-subscription table of a processEvents answer, a dry run or a ledger entry.
export function syncSummary(answer, dryRun) {
  return table(dryRun ? "Dry run by subscription" : "Sync by subscription",
    ["Publisher", "Status", "Events", "Imported", "Ignored", "Batches", "Resent", "Parked", "Error"],
    (answer.Subscriptions || []).map((s) => h("tr", {},
      h("th", { scope: "row" }, s.PublisherProgramId),
      h("td", {}, s.Status),
      h("td", {}, s.Events), h("td", {}, s.Imported), h("td", {}, s.Ignored),
      h("td", {}, (s.Batches || []).map((b) => `${b.Rows} row(s) → process ${b.ImportProcessId}${b.BatchId ? ` (batch ${b.BatchId})` : ""}`).join("; ") || "—"),
      h("td", {}, s.Resent || 0),
      h("td", {}, (s.Parked || []).map((p) => `${p.EventId}: ${p.Reason}`).join("; ") || "—"),
      h("td", { class: "wrap" }, s.Error || "—"))));
}

function batches(sync) {
  return table(`Batches of sync ${sync.SyncId}`, ["Publisher", "#", "Process", "Rows", "Status", "LB answer", "Batch", "File name"],
    sync.Batches.map((b) => h("tr", {},
      h("th", { scope: "row" }, b.PublisherProgramId),
      h("td", {}, b.Seq), h("td", {}, b.ImportProcessId), h("td", {}, b.Rows),
      h("td", {}, b.Status === "unanswered" ? "unanswered (resent; LB may hold it twice)" : b.Status),
      h("td", { class: "wrap" }, b.LbStatus === null ? "—" : `${b.LbStatus}${b.LbMessage ? ": " + b.LbMessage : ""}`),
      h("td", {}, b.BatchUrl ? h("a", { href: b.BatchUrl, rel: "noreferrer noopener", target: "_blank" }, b.BatchId || "open") : b.BatchId || "—"),
      h("td", { class: "wrap" }, b.FileName || "—"))));
}

function syncEntry(sync, open) {
  return h("details", { class: "sync", open },
    h("summary", {}, `${when(sync.StartedUtc)} · ${sync.Status}${sync.HttpStatus ? ` (HTTP ${sync.HttpStatus})` : ""} · ${sync.SyncId}${sync.Resumed ? ` · taken over ${sync.Resumed}×` : ""}`),
    h("p", {}, `Finished ${when(sync.FinishedUtc)}.`),
    syncSummary(sync, false),
    batches(sync));
}

// Parked events: an answer of any page shape (a list, or an object holding one).
function parkedItems(answer) {
  if (Array.isArray(answer)) return answer;
  for (const v of Object.values(answer || {})) if (Array.isArray(v)) return v;
  return [];
}

async function parkedSection(programId, pub) {
  const base = `/api/programs/${enc(programId)}/eventSubs/${enc(pub)}/parked`;
  const errors = errorBox();
  const body = h("div", {});
  const section = h("section", { class: "parked", "aria-label": `Parked events of ${pub}` }, h("h3", {}, `Parked events from ${pub}`), errors.el, body);

  async function load() {
    let answer;
    try {
      answer = await api("GET", base);
    } catch (err) {
      if ((err.status === 404 || err.status === 405) && err.code !== "unknown_subscription" && err.code !== "unknown_program") {
        body.replaceChildren(h("p", { class: "note" }, `This hub has no parked-events endpoint (it answered ${err.status}: ${err.message}).`));
      } else {
        errors.show(err);
      }
      return;
    }
    const items = parkedItems(answer);
    if (!items.length) { body.replaceChildren(h("p", {}, "No parked events.")); return; }
    const columns = Object.keys(items[0]);
    const all = h("button", { type: "button" }, `Redeliver all ${items.length} at the next sync`);
    all.addEventListener("click", () => act(all, errors, async () => {
      await api("POST", `${base}/redeliver`, {});
      say(`Parked events of ${pub} queued for the next sync.`);
      await load();
    }));
    body.replaceChildren(h("div", { class: "buttons" }, all),
      table(`Parked events from ${pub}`, [...columns, "Act"], items.map((p) => {
        const again = h("button", { type: "button", "aria-label": `Redeliver ${p.EventId}` }, "Redeliver");
        again.addEventListener("click", () => act(again, errors, async () => {
          await api("POST", `${base}/redeliver`, { EventIds: [p.EventId] });
          say(`${p.EventId} queued for the next sync.`);
          await load();
        }));
        const drop = h("button", { type: "button", class: "danger", "aria-label": `Drop ${p.EventId}` }, "Drop");
        drop.addEventListener("click", () => {
          if (!confirm(`Drop parked event ${p.EventId}? It will not be delivered.`)) return;
          act(drop, errors, async () => { await api("DELETE", `${base}/${enc(p.EventId)}`); say(`${p.EventId} dropped.`); await load(); });
        });
        return h("tr", {}, columns.map((c) => h("td", { class: "wrap" }, typeof p[c] === "object" && p[c] !== null ? JSON.stringify(p[c]) : String(p[c] ?? "—"))), h("td", { class: "actions" }, again, drop));
      })));
  }
  await load();
  return section;
}

export async function historyPage(programId) {
  const errors = errorBox();
  const list = h("div", {});
  const parked = h("div", {});
  const limit = 20;

  async function load() {
    try {
      const answer = await api("GET", `/api/programs/${enc(programId)}/syncs`, undefined, { limit });
      list.replaceChildren(...(answer.Syncs.length ? answer.Syncs.map((s, i) => syncEntry(s, i === 0)) : [h("p", {}, "No syncs yet.")]));
    } catch (err) {
      errors.show(err);
    }
    try {
      const subs = await api("GET", `/api/programs/${enc(programId)}/eventSubs`);
      const items = Array.isArray(subs) ? subs : subs.Subscriptions || [];
      parked.replaceChildren(...(await Promise.all(items.map((s) => parkedSection(programId, s.PublisherProgramId)))));
    } catch (err) {
      errors.show(err);
    }
  }

  const refresh = h("button", { type: "button" }, "Refresh");
  refresh.addEventListener("click", () => act(refresh, errors, load));
  await load();
  return page(`Sync history of ${programId}`,
    h("p", {}, h("a", { href: `#/programs/${enc(programId)}/subscriptions` }, `Subscriptions of ${programId}`)),
    errors.el, h("div", { class: "buttons" }, refresh),
    h("h2", {}, `Latest ${limit} syncs`), list,
    h("h2", {}, "Parked events"),
    h("p", { class: "hint" }, "Events a template could not render, skipped under OnRenderError park. Redelivered events are sent by the next sync if they render then."),
    parked);
}
