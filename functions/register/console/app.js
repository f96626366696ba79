// Hookline's console: sign-in (an API key, or a portal link's token), then the
// Webhooks, Events and Keys pages. It talks only to the JSON API of this origin.
//
// Where credentials live: the key or token in sessionStorage only (gone with the tab),
// never in a URL, a cookie or localStorage. A portal link's token arrives in the URL
// fragment (never sent to a server) and is removed from the address bar at once.
// localStorage keeps only the names of projects used before, for the Project field.

import { h, fill, field, setError, status, when } from "./dom.js";
import { Api, session } from "./api.js";
import { webhooksPage } from "./webhooks.js";
import { eventsPage } from "./events.js";
import { keysPage } from "./keys.js";

const CREDENTIAL = "hookline.credential";
const PROJECT = "hookline.project";
const RECENT = "hookline.projects";

const app = document.getElementById("app");

function recentProjects() {
  try {
    const list = JSON.parse(localStorage.getItem(RECENT) ?? "[]");
    return Array.isArray(list) ? list.filter((p) => typeof p === "string") : [];
  } catch {
    return [];
  }
}

function remember(project) {
  const list = [project, ...recentProjects().filter((p) => p !== project)].slice(0, 10);
  localStorage.setItem(RECENT, JSON.stringify(list));
}

function signOut(message) {
  sessionStorage.removeItem(CREDENTIAL);
  sessionStorage.removeItem(PROJECT);
  signIn(message);
}

function signIn(message) {
  document.title = "Sign in · Hookline";
  const key = field("API key", h("input", { type: "password", autocomplete: "off", spellcheck: "false" }), "A project key (hlk_…) or the admin key.");
  const datalist = h("datalist", { id: "recent-projects" }, recentProjects().map((p) => h("option", { value: p })));
  const project = field("Project", h("input", { list: "recent-projects", autocomplete: "off", spellcheck: "false" }), "Filled in for a project key; needed with the admin key.");
  const problem = h("div", { "aria-live": "assertive" }, message ? status(message, "error") : null);
  const button = h("button", { type: "submit", text: "Sign in" });
  const form = h("form", { class: "sign-in", novalidate: true }, h("h1", { text: "Hookline" }), problem, key.wrap, project.wrap, datalist, button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setError(key, null);
    setError(project, null);
    fill(problem);
    const credential = key.control.value.trim();
    if (!credential) {
      setError(key, "Enter an API key.");
      key.control.focus();
      return;
    }
    button.disabled = true;
    try {
      const s = await session(credential);
      let chosen = project.control.value.trim();
      if (s.project_id) {
        if (chosen && chosen !== s.project_id) {
          setError(project, `This key is for project ${s.project_id}.`);
          project.control.value = s.project_id;
          project.control.focus();
          return;
        }
        chosen = s.project_id;
      } else if (!chosen) {
        setError(project, "The admin key works on every project: name one.");
        project.control.focus();
        return;
      } else if (!/^[A-Za-z0-9_.-]{1,64}$/.test(chosen) || chosen === "." || chosen === "..") {
        setError(project, "A project is 1 to 64 of A-Z, a-z, 0-9, '_', '-', '.', and not '.' or '..'.");
        project.control.focus();
        return;
      }
      start(s, credential, chosen);
    } catch (e) {
      if (e.status === 401) {
        setError(key, "This key is not valid.");
        key.control.focus();
      } else {
        fill(problem, status(e.message, "error"));
      }
    } finally {
      button.disabled = false;
    }
  });
  fill(app, h("main", { id: "main" }, form));
  key.control.focus();
}

function start(s, credential, project) {
  sessionStorage.setItem(CREDENTIAL, credential);
  sessionStorage.setItem(PROJECT, project);
  if (s.kind !== "portal") remember(project);
  const api = new Api(credential, project);
  api.onUnauthorized = () => signOut(s.kind === "portal" ? "This link has expired" : "The key no longer works: sign in again.");
  const ctx = { api, readOnly: Boolean(s.read_only), kind: s.kind, project };
  const main = h("main", { id: "main", tabindex: "-1" });
  const pages = [
    ["Webhooks", () => webhooksPage(ctx)],
    ["Events", () => eventsPage(ctx)],
  ];
  if (s.kind === "admin") pages.push(["Keys", () => keysPage(ctx)]);
  if (s.kind === "project") pages.push(["Portal links", () => keysPage(ctx)]);
  const buttons = pages.map(([name, make]) => {
    const b = h("button", { type: "button", class: "nav", text: name });
    b.addEventListener("click", () => show(name, make, b));
    return b;
  });
  const show = (name, make, button) => {
    for (const b of buttons) b.removeAttribute("aria-current");
    button.setAttribute("aria-current", "page");
    document.title = `${name} · ${project} · Hookline`;
    fill(main, make());
  };
  const badges = [];
  if (s.kind === "portal") badges.push(h("span", { class: "badge", text: `Portal link until ${when(s.expires_at)}` }));
  if (s.read_only) badges.push(h("span", { class: "badge warn", text: "Read-only" }));
  if (s.kind === "admin") badges.push(h("span", { class: "badge", text: "Admin" }));
  const header = h(
    "header",
    { class: "top" },
    h("div", { class: "brand" }, h("span", { class: "logo", text: "Hookline" }), h("span", { class: "project", "aria-label": "Project", text: project }), badges),
    h("nav", { "aria-label": "Pages" }, buttons),
    h("button", { type: "button", class: "secondary", text: s.kind === "portal" ? "Leave" : "Sign out", onclick: () => signOut() }),
  );
  fill(app, h("a", { href: "#main", class: "skip", text: "Skip to content" }), header, main);
  show(pages[0][0], pages[0][1], buttons[0]);
}

async function boot() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get("token");
  if (token) {
    // Out of the address bar (and so of the history and any bookmark) before anything else.
    history.replaceState(null, "", location.pathname + location.search);
    try {
      const s = await session(token);
      start(s, token, s.project_id);
    } catch (e) {
      // Whatever this tab was signed in with before, the link replaces it.
      signOut(e.status === 401 ? "This link has expired" : e.message);
    }
    return;
  }
  const saved = sessionStorage.getItem(CREDENTIAL);
  if (!saved) {
    signIn();
    return;
  }
  try {
    const s = await session(saved);
    start(s, saved, s.project_id ?? sessionStorage.getItem(PROJECT));
  } catch (e) {
    signOut(e.status === 401 ? "Your session has ended: sign in again." : e.message);
  }
}

// A portal link opened in a tab already showing the console changes only the fragment.
window.addEventListener("hashchange", () => {
  if (new URLSearchParams(location.hash.slice(1)).has("token")) boot();
});
boot();
