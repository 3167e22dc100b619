// The template editor: line numbers, the error marker where the API says, and a live
// preview of rows (the publisher's latest events, or events pasted in) as you type.
import { ApiError, api, enc } from "./api.js";
import { act, errorBox, field, h, page, say, table } from "./ui.js";
import { entryOffset } from "./template-position.js";

const PAUSE_MS = 150;

// 1-based line and column of `offset` in `text`.
function lineColumn(text, offset) {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return { line, column: offset - before.lastIndexOf("\n") };
}

export async function editorPage(programId, pub) {
  const path = `/api/programs/${enc(programId)}/eventSubs/${enc(pub)}`;
  const errors = errorBox();
  let sub = null;
  try {
    sub = await api("GET", path);
  } catch (err) {
    errors.show(err);
  }
  const stored = sub ? sub.LbApiPayloadTemplate : null;
  const initial = stored === null || stored === undefined ? "" : typeof stored === "string" ? stored : JSON.stringify(stored, null, 2);

  const source = h("textarea", { id: "template", class: "code", spellcheck: "false", autocomplete: "off", wrap: "off", rows: 16, "aria-describedby": "template-problem" }, initial);
  const gutter = h("div", { class: "gutter", "aria-hidden": "true" });
  const marker = h("div", { class: "marker", "aria-hidden": "true" });
  marker.hidden = true;
  const problem = h("div", { id: "template-problem", class: "problem", role: "alert" });
  const importId = h("input", { id: "import-process-id", type: "number", min: "1", inputmode: "numeric", value: sub && sub.ImportProcessId ? sub.ImportProcessId : "" });
  const pasted = h("textarea", { id: "pasted-events", class: "code small", spellcheck: "false", rows: 5 });
  const rows = h("div", { id: "preview", "aria-live": "polite", "data-state": "idle" });
  const saveErrors = errorBox();
  const save = h("button", { type: "button", id: "save-template" }, "Save template");
  const force = h("input", { type: "checkbox", id: "force-save" });

  function renderGutter() {
    const count = source.value.split("\n").length;
    if (gutter.childElementCount === count) return;
    const lines = [];
    for (let i = 1; i <= count; i += 1) lines.push(h("span", { "data-line": i }, String(i)));
    gutter.replaceChildren(...lines);
  }

  function clearMarker() {
    marker.hidden = true;
    problem.textContent = "";
    source.removeAttribute("aria-invalid");
    for (const el of gutter.querySelectorAll(".bad")) el.classList.remove("bad");
  }

  // The API's line/column are within one entry's row template; find them in the editor's text.
  function showMarker(err) {
    const d = err.details || {};
    let where = null;
    if (d.line) {
      const offset = entryOffset(source.value, d.entry, d.line, d.column || 1);
      if (offset !== null) where = lineColumn(source.value, offset);
    }
    problem.textContent = err.message;
    source.setAttribute("aria-invalid", "true");
    if (!where) { marker.hidden = true; return; }
    const cell = gutter.querySelector(`[data-line="${where.line}"]`);
    if (cell) cell.classList.add("bad");
    marker.dataset.line = String(where.line);
    marker.dataset.column = String(where.column);
    const style = getComputedStyle(source);
    const lineHeight = parseFloat(style.lineHeight);
    marker.style.top = `${parseFloat(style.paddingTop) + (where.line - 1) * lineHeight - source.scrollTop}px`;
    marker.style.left = `calc(${parseFloat(style.paddingLeft) - source.scrollLeft}px + ${where.column - 1}ch)`;
    marker.style.height = `${lineHeight}px`;
    marker.title = err.message;
    marker.hidden = false;
  }

  function previewBody() {
    const body = { LbApiPayloadTemplate: source.value };
    if (importId.value) body.ImportProcessId = Number(importId.value);
    if (pasted.value.trim()) {
      let events;
      try {
        events = JSON.parse(pasted.value);
      } catch (e) {
        throw new ApiError(0, "pasted", `The pasted events are not JSON: ${e.message}`);
      }
      body.Events = Array.isArray(events) ? events : [events];
    } else {
      body.Latest = 10;
    }
    return body;
  }

  function showRows(answer) {
    const s = answer.Summary;
    rows.replaceChildren(
      h("p", { id: "preview-summary" }, `${answer.Results.length} event(s): ${s.Import} to import, ${s.Ignore} ignored, ${s.Failed} failed.`),
      table("Preview rows", ["Event", "Entry", "Action", "Row as LB receives it"], answer.Results.map((r) => h("tr", { class: r.Error ? "failed" : "" },
        h("th", { scope: "row" }, r.PublisherEventId || r.EventId || "pasted"),
        h("td", {}, r.EntryKey === null ? "—" : r.EntryKey),
        h("td", {}, r.Action),
        h("td", { class: "row-cell" }, r.Error ? h("span", { class: "error-text" }, r.Error.message) : h("code", {}, JSON.stringify(r.Row)))))));
  }

  let sequence = 0;
  let timer = 0;
  async function preview() {
    const mine = ++sequence;
    let answer;
    let failure = null;
    try {
      answer = await api("POST", `${path}/preview`, previewBody());
    } catch (err) {
      failure = err;
    }
    if (mine !== sequence) return;
    clearMarker();
    if (failure) {
      if (failure.code === "invalid_template") {
        showMarker(failure);
        rows.replaceChildren(h("p", {}, "No preview while the template has an error."));
      } else {
        problem.textContent = failure.message;
        rows.replaceChildren();
      }
    } else {
      showRows(answer);
    }
    rows.dataset.state = failure ? "error" : "rows";
    rows.dataset.renderedAt = String(performance.now());
  }

  function changed() {
    renderGutter();
    rows.dataset.inputAt = String(performance.now());
    rows.dataset.state = "waiting";
    clearTimeout(timer);
    timer = setTimeout(preview, PAUSE_MS);
  }

  source.addEventListener("input", changed);
  importId.addEventListener("input", changed);
  pasted.addEventListener("input", changed);
  source.addEventListener("scroll", () => {
    gutter.scrollTop = source.scrollTop;
    if (!marker.hidden) marker.hidden = true;
  });
  source.addEventListener("keydown", (ev) => {
    // Tab indents inside the editor; Escape then Tab leaves it (keyboard users are never trapped).
    if (ev.key === "Tab" && !ev.shiftKey && !source.dataset.escaped) {
      ev.preventDefault();
      source.setRangeText("  ", source.selectionStart, source.selectionEnd, "end");
      changed();
    } else if (ev.key === "Escape") {
      source.dataset.escaped = "1";
    } else {
      delete source.dataset.escaped;
    }
  });

  save.addEventListener("click", () => act(save, saveErrors, async () => {
    const body = { LbApiPayloadTemplate: source.value, ImportProcessId: importId.value ? Number(importId.value) : null };
    await api("PATCH", path, body, force.checked ? { force: "true" } : undefined);
    say(`Template of ${pub} saved.`);
  }));

  renderGutter();
  const node = page(`Template: ${programId} from ${pub}`,
    h("p", {}, h("a", { href: `#/programs/${enc(programId)}/subscriptions` }, `Back to ${programId}'s subscriptions`)),
    errors.el,
    h("div", { class: "editor-grid" },
      h("div", {},
        h("label", { for: "template" }, "Row template (an object of entries, or one Handlebars row template)"),
        h("p", { class: "hint", id: "template-hint" }, "Tab indents; press Escape then Tab to leave the editor."),
        h("div", { class: "editor" }, gutter, h("div", { class: "editor-text" }, source, marker)),
        problem,
        field("Import process id (a plain row template needs it)", importId),
        field("Events to try (a JSON array; empty: the publisher's latest 10)", pasted),
        h("div", { class: "field check" }, force, h("label", { for: "force-save" }, "Save even if it fails on the latest event")),
        saveErrors.el,
        h("div", { class: "buttons" }, save)),
      h("div", { class: "preview-pane" }, h("h2", {}, "Preview"), rows)));
  if (sub) setTimeout(preview, 0);
  return node;
}
