// Keys and portal links: the admin's project API keys (create shows the key once;
// revoke), and customer portal links (the admin's or the project key's).

import { h, append, fill, status, when, field, setError } from "./dom.js";
import { pagedTable } from "./pager.js";
import { shownOnce } from "./webhooks.js";

export function keysPage(ctx) {
  const { api, kind } = ctx;
  const admin = kind === "admin";
  const page = h("section", { "aria-labelledby": "keys-title" });
  const out = h("div", { "aria-live": "polite" });
  let table = null;

  if (admin) {
    table = pagedTable({
      label: "API keys and portal links",
      columns: ["Name", "ID", "Kind", "Read-only", "Expires", "Created", ""],
      empty: "No keys for this project.",
      load: (cursor) => api.get(api.projectPath("/keys"), { cursor, limit: 20 }),
      row: (k) => h("tr", {},
        h("td", { text: k.name ?? "—" }),
        h("td", { class: "mono small", text: k.id }),
        h("td", { text: k.kind === "portal" ? "Portal link" : "Project key" }),
        h("td", { text: k.read_only ? "Yes" : "No" }),
        h("td", { text: when(k.expires_at) }),
        h("td", { text: when(k.created_at) }),
        h("td", {}, h("button", {
          type: "button", class: "danger", text: "Revoke", "aria-label": `Revoke ${k.name ?? k.id}`,
          onclick: async () => {
            try {
              await api.call("DELETE", api.projectPath(`/keys/${k.id}`));
              fill(out, status(`${k.id} revoked.`));
              table.reload(true);
            } catch (e) {
              fill(out, status(e.message, "error"));
            }
          },
        })),
      ),
    });
  }

  /** The optional `name` a key or link is created with, shown in the table. */
  const named = (label) => field(label, h("input", { type: "text", maxlength: 100 }), "Optional: what it is for.");
  const body = (name) => (name.control.value.trim() ? { name: name.control.value } : {});
  const failed = (name, err) => {
    setError(name, err.field === "name" ? err.message : null);
    fill(out, status(err.field ? `${err.field}: ${err.message}` : err.message, "error"));
  };

  const keyName = named("Key name");
  const createKey = admin ? h("form", { class: "inline" }, keyName.wrap, h("button", { type: "submit", text: "Create project key" })) : null;
  if (createKey) createKey.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const k = await api.call("POST", api.projectPath("/keys"), { body: body(keyName) });
      setError(keyName, null);
      keyName.control.value = "";
      fill(out, h("div", { class: "notice" }, h("p", { text: `Key ${k.name ?? k.id} for ${k.project_id}. Shown this once: copy it now.` }), shownOnce("Project API key", k.key)));
      table.reload(true);
    } catch (err) {
      failed(keyName, err);
    }
  });

  const ttl = field("Link lifetime (seconds)", h("input", { type: "number", min: 1, max: 86400, value: 3600 }), "1 to 86,400 (a day).");
  const readOnly = field("Read-only link", h("input", { type: "checkbox" }));
  const linkName = named("Link name");
  const portal = h("form", { class: "inline" }, linkName.wrap, ttl.wrap, readOnly.wrap, h("button", { type: "submit", text: "Create portal link" }));
  portal.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const link = await api.call("POST", api.projectPath("/portal"), {
        body: { ...body(linkName), ttl_seconds: Number(ttl.control.value), read_only: readOnly.control.checked },
      });
      setError(linkName, null);
      linkName.control.value = "";
      fill(out, h("div", { class: "notice" },
        h("p", { text: `A ${link.read_only ? "read-only " : ""}portal link to ${link.project_id}, working until ${when(link.expires_at)}. Give it to the project's owner; it is shown this once.` }),
        shownOnce("Portal link", link.url),
      ));
      if (table) table.reload(true);
    } catch (err) {
      failed(linkName, err);
    }
  });

  append(page, [
    h("h1", { id: "keys-title", text: admin ? "Keys" : "Portal links" }),
    h("h2", { text: "Customer portal" }),
    h("p", { text: "A link that opens this console on this project only, until it expires." }),
    portal,
    admin ? [h("h2", { text: "Project API keys" }), createKey] : null,
    out,
    table ? table.el : null,
  ]);
  if (table) table.reload();
  return page;
}
