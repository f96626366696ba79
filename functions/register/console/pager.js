// Pages of a listing: the API's opaque cursors, kept as a stack for Previous.

import { h, fill, status } from "./dom.js";

/** A paged table. `load(cursor)` answers `{data, next_cursor}`; `row(item)` makes a `<tr>`.
 *  Returns the element and `reload()`. */
export function pagedTable({ label, columns, load, row, empty = "Nothing yet." }) {
  const body = h("tbody");
  const table = h(
    "table",
    { "aria-label": label },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", text: c })))),
    body,
  );
  const note = h("div", { class: "table-note" });
  const previous = h("button", { type: "button", class: "secondary", text: "Previous", disabled: true });
  const next = h("button", { type: "button", class: "secondary", text: "Next", disabled: true });
  const nav = h("nav", { class: "pager", "aria-label": `${label} pages` }, previous, next);
  const cursors = [null];
  let page = 0;
  let nextCursor = null;

  const show = async () => {
    fill(note);
    try {
      let result = await load(cursors[page]);
      // A filtered listing may answer a short page, even an empty one, with a cursor to
      // go on (each call reads a bounded stretch of the table): read on, a few calls.
      for (let more = 0; result.data.length === 0 && result.next_cursor && more < 4; more += 1) {
        cursors[page] = result.next_cursor;
        result = await load(cursors[page]);
      }
      fill(body, result.data.map((item) => {
        const tr = row(item);
        // Each cell says its column, for the narrow layout (CSS shows it as a label).
        tr.querySelectorAll("td").forEach((td, i) => td.setAttribute("data-label", columns[i] ?? ""));
        return tr;
      }));
      if (result.data.length === 0) {
        fill(note, status(result.next_cursor ? "None in what was read so far; Next reads further." : empty));
      }
      nextCursor = result.next_cursor;
      next.disabled = !nextCursor;
      previous.disabled = page === 0;
    } catch (e) {
      fill(body);
      fill(note, status(e.message, "error"));
    }
  };
  previous.addEventListener("click", () => {
    if (page > 0) {
      page -= 1;
      show();
    }
  });
  next.addEventListener("click", () => {
    if (nextCursor) {
      page += 1;
      cursors[page] = nextCursor;
      show();
    }
  });
  const reload = (fromStart = false) => {
    if (fromStart) {
      page = 0;
      cursors.length = 1;
    }
    return show();
  };
  return { el: h("div", { class: "table-wrap" }, table, note, nav), reload };
}
