// The Events page: the project's recent events, and one event's deliveries by id.

import { h, fill, status, when, field } from "./dom.js";
import { pagedTable } from "./pager.js";

export function eventsPage(ctx) {
  const { api } = ctx;
  const page = h("section", { "aria-labelledby": "events-title" });
  const type = field("Event type", h("input", { autocomplete: "off", placeholder: "All types" }));
  const lookup = field("Event ID", h("input", { autocomplete: "off" }));
  const detail = h("div", { class: "panel", "aria-live": "polite" });

  const show = async (id) => {
    fill(detail, status("Loading…"));
    try {
      const e = await api.get(api.projectPath(`/events/${encodeURIComponent(id)}`));
      const rows = e.deliveries.map((d) =>
        h("tr", {},
          h("td", { "data-label": "Webhook", class: "mono small", text: d.webhook_id }),
          h("td", { "data-label": "Delivery", class: "mono small", text: d.delivery_id }),
          h("td", { "data-label": "Status" }, h("span", { class: `badge ${d.status}`, text: d.status })),
          h("td", { "data-label": "Attempts", text: d.attempts }),
          h("td", { "data-label": "Last HTTP", text: d.last_status_code ?? "—" }),
        ),
      );
      fill(detail,
        h("h2", { text: `Event ${e.id}` }),
        h("p", { text: `${e.type} · ${when(e.timestamp)}` }),
        rows.length
          ? h("table", { "aria-label": "Deliveries of the event" },
              h("thead", {}, h("tr", {}, ["Webhook", "Delivery", "Status", "Attempts", "Last HTTP"].map((c) => h("th", { scope: "col", text: c })))),
              h("tbody", {}, rows))
          : status("No webhook received this event."),
      );
    } catch (e) {
      fill(detail, status(e.status === 404 ? `No event ${id} in this project.` : e.message, "error"));
    }
  };

  const table = pagedTable({
    label: "Events",
    columns: ["Time", "ID", "Type", "Channel", "Matched"],
    empty: "No events yet.",
    load: (cursor) => api.get(api.projectPath("/events"), { cursor, type: type.control.value.trim(), limit: 20 }),
    row: (e) => h("tr", {},
      h("td", { text: when(e.timestamp) }),
      h("td", {}, h("button", { type: "button", class: "link mono", text: e.id, onclick: () => show(e.id) })),
      h("td", { text: e.type }),
      h("td", { text: e.channel ?? "—" }),
      h("td", { text: e.matched }),
    ),
  });
  const filterForm = h("form", { class: "inline" }, type.wrap, h("button", { type: "submit", class: "secondary", text: "Filter" }));
  filterForm.addEventListener("submit", (e) => {
    e.preventDefault();
    table.reload(true);
  });
  const lookupForm = h("form", { class: "inline" }, lookup.wrap, h("button", { type: "submit", class: "secondary", text: "Look up" }));
  lookupForm.addEventListener("submit", (e) => {
    e.preventDefault();
    if (lookup.control.value.trim()) show(lookup.control.value.trim());
  });
  page.append(h("h1", { id: "events-title", text: "Events" }), h("div", { class: "toolbar" }, filterForm, lookupForm), table.el, detail);
  table.reload();
  return page;
}
