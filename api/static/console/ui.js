// Small DOM helpers: elements are built with text nodes only (never HTML from data).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

let nextId = 0;
export function uid(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

// A labelled field: label + control (+ hint). Answers [wrapper, control].
export function field(labelText, control, hint) {
  if (!control.id) control.id = uid("f");
  const parts = [h("label", { for: control.id }, labelText), control];
  if (hint) {
    const hintId = uid("hint");
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("small", { id: hintId, class: "hint" }, hint));
  }
  return h("div", { class: "field" }, parts);
}

// A region that shows one error message (the API's) or nothing.
export function errorBox() {
  const box = h("div", { class: "error", role: "alert" });
  box.hidden = true;
  return {
    el: box,
    show(err) {
      box.textContent = err ? (err.message || String(err)) : "";
      box.hidden = !err;
    },
    clear() {
      box.textContent = "";
      box.hidden = true;
    },
  };
}

export function say(text) {
  const status = document.getElementById("status");
  status.textContent = text;
  clearTimeout(say.timer);
  say.timer = setTimeout(() => { status.textContent = ""; }, 6000);
}

// A table inside a keyboard-scrollable region (narrow screens scroll sideways).
export function table(label, headers, rows) {
  return h("div", { class: "table-wrap", role: "region", "aria-label": label, tabindex: "0" },
    h("table", {},
      h("caption", { class: "visually-hidden" }, label),
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headers.length }, "None.")))));
}

export function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

export function when(text) {
  return text ? text.replace("T", " ").replace(/\.\d+Z$/, "Z") : "—";
}

// Runs an async action from a button, showing its error in `errors`; the button is busy meanwhile.
export async function act(button, errors, work) {
  errors.clear();
  if (button) button.disabled = true;
  try {
    return await work();
  } catch (err) {
    errors.show(err);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

export function page(title, ...children) {
  // A plain div: the page's tables are the labelled regions (a section named like one would repeat it).
  return h("div", { class: "page" }, h("h1", { id: "page-title" }, title), children);
}
