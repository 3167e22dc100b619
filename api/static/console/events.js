// The events of one publisher: filters, paging and delete.
import { api, enc } from "./api.js";
import { act, errorBox, field, h, json, page, say, table, when } from "./ui.js";

function isoOrEmpty(local) {
  return local ? new Date(local).toISOString() : "";
}

export async function eventsPage(initialPublisher) {
  const errors = errorBox();
  const results = h("div", {});
  const publisher = h("input", { name: "publisher", required: true, maxlength: 25, value: initialPublisher, autocomplete: "off" });
  const eventType = h("input", { name: "eventType", maxlength: 50, autocomplete: "off" });
  const after = h("input", { name: "createdAfter", type: "datetime-local", step: "1" });
  const before = h("input", { name: "createdBefore", type: "datetime-local", step: "1" });
  const limit = h("select", { name: "limit" }, ["10", "25", "50", "100"].map((n) => h("option", { value: n, selected: n === "25" }, n)));
  const submit = h("button", { type: "submit" }, "Show events");
  const tokens = [""]; // page tokens of the pages seen so far: tokens[i] opens page i

  async function show(pageIndex) {
    const pub = publisher.value.trim();
    const answer = await api("GET", `/api/events/${enc(pub)}`, undefined, {
      eventType: eventType.value.trim(), createdAfter: isoOrEmpty(after.value), createdBefore: isoOrEmpty(before.value),
      limit: limit.value, pageToken: tokens[pageIndex],
    });
    tokens.length = pageIndex + 1;
    if (answer.NextPageToken) tokens.push(answer.NextPageToken);
    const prev = h("button", { type: "button", disabled: pageIndex === 0 }, "Previous page");
    prev.addEventListener("click", () => act(prev, errors, () => show(pageIndex - 1)));
    const next = h("button", { type: "button", disabled: !answer.NextPageToken }, "Next page");
    next.addEventListener("click", () => act(next, errors, () => show(pageIndex + 1)));
    results.replaceChildren(
      h("p", { id: "events-page" }, `Page ${pageIndex + 1}: ${answer.Events.length} event(s) of ${pub}.`),
      table(`Events of ${pub}`, ["Event id", "Publisher's id", "Type", "Participant", "Created", "Body", "Delete"],
        answer.Events.map((e) => {
          const del = h("button", { type: "button", class: "danger", "aria-label": `Delete ${e.EventId}` }, "Delete");
          del.addEventListener("click", () => {
            if (!confirm(`Delete event ${e.EventId}? Subscribers will not receive it.`)) return;
            act(del, errors, async () => { await api("DELETE", `/api/events/${enc(e.EventId)}`); say(`${e.EventId} deleted.`); await show(pageIndex); });
          });
          return h("tr", {},
            h("th", { scope: "row", class: "wrap" }, e.EventId),
            h("td", { class: "wrap" }, e.PublisherEventId), h("td", {}, e.EventType),
            h("td", { class: "wrap" }, e.PublisherParticipantId), h("td", {}, when(e.CreatedUtc)),
            h("td", {}, h("details", {}, h("summary", {}, "JSON"), json(e))),
            h("td", {}, del));
        })),
      h("div", { class: "buttons" }, prev, next));
    if (history.replaceState) history.replaceState(null, "", `#/events/${enc(pub)}`);
  }

  const form = h("form", { class: "form filters", "aria-labelledby": "events-form-title" },
    h("h2", { id: "events-form-title", class: "visually-hidden" }, "Filters"),
    field("Publisher program", publisher),
    field("Event type", eventType),
    field("Created after (local time)", after),
    field("Created before (local time)", before),
    field("Per page", limit),
    h("div", { class: "buttons" }, submit));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    tokens.length = 1;
    act(submit, errors, () => show(0));
  });
  if (initialPublisher) await show(0).catch((err) => errors.show(err));
  return page("Events", form, errors.el, results);
}
