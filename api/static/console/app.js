// The console's shell: sign-in, navigation and the hash router. Pages render into #page.
import { signIn, signOut, signedIn, userId } from "./api.js";
import { errorBox, h } from "./ui.js";
import { programsPage } from "./programs.js";
import { keysPage } from "./keys.js";
import { subscriptionsPage } from "./subscriptions.js";
import { editorPage } from "./editor.js";
import { historyPage } from "./history.js";
import { eventsPage } from "./events.js";

const ROUTES = [
  [/^\/programs$/, () => programsPage()],
  [/^\/keys$/, () => keysPage()],
  [/^\/programs\/([^/]+)\/subscriptions$/, (m) => subscriptionsPage(m[1])],
  [/^\/programs\/([^/]+)\/subscriptions\/([^/]+)\/template$/, (m) => editorPage(m[1], m[2])],
  [/^\/programs\/([^/]+)\/history$/, (m) => historyPage(m[1])],
  [/^\/events(?:\/([^/]+))?$/, (m) => eventsPage(m[1] || "")],
];

const signInError = errorBox();

function showShell() {
  const inside = signedIn();
  document.getElementById("sign-in-page").hidden = inside;
  document.getElementById("nav").hidden = !inside;
  document.getElementById("who").hidden = !inside;
  document.getElementById("who-name").textContent = inside ? `Signed in as ${userId()}` : "";
}

let generation = 0;

async function route() {
  showShell();
  const target = document.getElementById("page");
  target.replaceChildren();
  if (!signedIn()) return;
  const path = decodeURIComponent(location.hash.replace(/^#/, "")) || "/programs";
  for (const a of document.querySelectorAll("#nav a")) {
    if (path.startsWith(a.getAttribute("href").slice(1))) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const mine = ++generation;
  for (const [pattern, render] of ROUTES) {
    const m = path.match(pattern);
    if (!m) continue;
    const node = await render(m);
    if (mine !== generation) return;
    target.replaceChildren(node);
    const title = node.querySelector("h1");
    document.title = `${title ? title.textContent : "Console"} · Learning Hub console`;
    document.getElementById("main").focus({ preventScroll: true });
    return;
  }
  target.replaceChildren(h("p", {}, "No such page. ", h("a", { href: "#/programs" }, "Go to programs")));
}

function start() {
  const form = document.getElementById("sign-in");
  form.append(signInError.el);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = document.getElementById("credentials");
    try {
      signIn(input.value);
      input.value = "";
      signInError.clear();
      route();
    } catch (err) {
      signInError.show(err);
    }
  });
  document.getElementById("sign-out").addEventListener("click", () => {
    signOut();
    location.hash = "";
    route();
    document.getElementById("credentials").focus();
  });
  window.addEventListener("hashchange", route);
  route();
}

start();
