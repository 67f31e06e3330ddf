// The dashboard's shell: sign-in, navigation and a hash router (`#/plugins/x`), so the server
// serves one page and every link is a real, keyboard-reachable anchor.
//
// A page module exports `render(main, ctx)`; `ctx` is `{me, admin, params, navigate, onLeave}`:
// `me` is `{name, role, scope}` from /v1/whoami, `admin` whether the role is admin, `params` the path
// segments after the page's own, `onLeave(fn)` registers cleanup (timers) for when the page goes.

import * as api from "./api.js";
import { h, replace, field, notice, errorText, scopeText } from "./dom.js";

const PAGES = [
  { path: "", title: "Overview", module: "./pages/home.js" },
  { path: "plugins", title: "Plugins", module: "./pages/plugins.js" },
  { path: "flows", title: "Flows", module: "./pages/flows.js", roles: ["admin", "invoker"] },
  { path: "executions", title: "Executions", module: "./pages/flows.js", hidden: true, roles: ["admin", "invoker"] },
  { path: "monitoring", title: "Monitoring", module: "./pages/monitoring.js", unscoped: true },
  { path: "trust", title: "Trust", module: "./pages/trust.js", admin: true },
  { path: "connections", title: "Connections", module: "./pages/connections.js", admin: true },
  { path: "audit", title: "Audit", module: "./pages/audit.js", admin: true },
];

const root = document.getElementById("app");
/** @type {import("./types.js").TokenInfo | null} */
let me = null;
let leaving = [];
/** Counts page loads: cleanup registered by a page that is no longer shown runs at once. */
let generation = 0;

/**
 * Whether the signed-in role may open `page` (a publisher may upload and read metrics only). A
 * token scoped to some plugins and flows reads no server-wide metrics: they span everything.
 */
function allowed(page) {
  return (!page.admin || me.role === "admin") && (!page.roles || page.roles.includes(me.role)) && (!page.unscoped || !me.scope);
}

function route() {
  let parts;
  try {
    parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  } catch {
    return { page: null, params: [] };
  }
  const page = PAGES.find((p) => p.path === (parts[0] || "")) || null;
  return { page, params: parts.slice(1) };
}

function signIn(message) {
  for (const cleanup of leaving.splice(0)) cleanup();
  generation += 1;
  me = null;
  const input = h("input", { type: "password", name: "token", autocomplete: "current-password", required: true });
  const note = notice();
  if (message) note.show("error", message);
  const form = h(
    "form",
    { class: "card signin", id: "signin" },
    h("h1", {}, "Plugboard"),
    h("p", {}, "Sign in with an API token (admin, publisher or invoker)."),
    field("API token", input),
    h("button", { type: "submit", class: "primary" }, "Sign in"),
    note,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    api.setToken(input.value.trim());
    try {
      me = await api.get("/v1/whoami");
      show();
    } catch (error) {
      api.setToken(null);
      note.show("error", error.status === 401 ? "That token is not valid." : errorText(error));
    }
  });
  replace(root, h("main", { id: "main", class: "narrow", tabindex: "-1" }, form));
  input.focus();
}

function signOut() {
  api.setToken(null);
  // The next person starts at the overview, not on a page their role may not open.
  history.replaceState(null, "", location.pathname + location.search);
  signIn();
}

function nav(current) {
  // A hidden page (an execution) belongs under the visible page of the same module (Flows).
  const shown = current && current.hidden ? PAGES.find((p) => !p.hidden && p.module === current.module) : current;
  const links = PAGES.filter((p) => !p.hidden && allowed(p)).map((p) =>
    h("a", { href: `#/${p.path}`, "aria-current": p === shown ? "page" : false }, p.title),
  );
  return h(
    "header",
    { class: "top" },
    h("a", { class: "brand", href: "#/" }, "Plugboard"),
    h("nav", { "aria-label": "Main" }, links),
    h(
      "div",
      { class: "who" },
      h("span", { class: "badge", title: "Signed in as" }, `${me.name} · ${me.role}`),
      me.scope ? h("span", { class: "badge info", id: "who-scope", title: "This token acts only on these plugins and flows" }, `scoped: ${scopeText(me.scope)}`) : null,
      h("button", { type: "button", onclick: signOut, class: "link" }, "Sign out"),
    ),
  );
}

async function show(event) {
  for (const cleanup of leaving.splice(0)) cleanup();
  const current = ++generation;
  if (!me) return signIn();
  const { page, params } = route();
  const main = h("main", { id: "main", tabindex: "-1" });
  replace(root, nav(page), main);
  // After following a link, keyboard and screen-reader users start at the new page's content
  // rather than at the top of the document (the header was rebuilt, so focus was lost anyway).
  if (event) {
    window.scrollTo(0, 0);
    main.focus({ preventScroll: true });
  }
  if (!page || !allowed(page)) {
    const why = page ? `A ${me.role} token cannot open ${page.title}.` : "No such page.";
    document.title = "Plugboard";
    replace(
      main,
      h("section", { class: "card" }, h("h1", {}, page ? page.title : "Not found"), h("p", {}, why), h("a", { href: "#/" }, "Back to the overview")),
    );
    return;
  }
  document.title = `${page.title} · Plugboard`;
  const ctx = {
    me,
    admin: me.role === "admin",
    params,
    navigate: (hash) => {
      location.hash = hash;
    },
    onLeave: (fn) => (current === generation ? leaving.push(fn) : fn()),
  };
  try {
    const module = await import(page.module);
    await module.render(main, ctx);
  } catch (error) {
    replace(main, h("section", { class: "card" }, h("h1", {}, page.title), h("p", { class: "notice error" }, errorText(error))));
  }
}

// A 401 while signed in means the token was revoked (or the admin token replaced). While signing
// in, the form itself says the token is wrong.
api.whenUnauthorized(() => {
  if (me) signIn("The server no longer accepts this token; sign in again.");
});
window.addEventListener("hashchange", (event) => show(event));

// The skip link's `#main` would be read as a route by the hash router: move the focus instead.
const skip = document.querySelector("a.skip");
if (skip) {
  skip.addEventListener("click", (event) => {
    event.preventDefault();
    const main = document.getElementById("main");
    if (main) main.focus();
  });
}

(async () => {
  if (!api.token()) return signIn();
  try {
    me = await api.get("/v1/whoami");
    show();
  } catch {
    api.setToken(null);
    signIn();
  }
})();
