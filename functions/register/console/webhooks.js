// The Webhooks page: the table of seed 004 (On/Off, Name, URL, Event Trigger, Created,
// Health), Register Webhook, and Webhook Details.

import { h, fill, status, when, copy, dialog, field, uid } from "./dom.js";
import { pagedTable } from "./pager.js";
import { webhookForm, mergePatch, editable } from "./form.js";

function health(w) {
  const hl = w.health;
  const parts = [];
  if (!w.enabled && w.disabled_reason) {
    parts.push(h("span", { class: "badge bad", text: w.disabled_reason === "failing" ? "Disabled: failing" : "Disabled" }));
  }
  if (!hl || (hl.delivered === 0 && hl.failed === 0)) {
    parts.push(h("span", { class: "muted", text: "No attempts in 24 h" }));
  } else {
    const rate = Math.round((hl.success_rate ?? 0) * 1000) / 10;
    parts.push(h("span", { class: rate >= 95 ? "good" : rate >= 50 ? "warn" : "bad", text: `${rate}% of ${hl.delivered + hl.failed}` }));
  }
  if (hl && hl.last_failure_at) {
    parts.push(h("span", { class: "muted small", text: `Last failure ${when(hl.last_failure_at)}${hl.last_status_code ? ` (HTTP ${hl.last_status_code})` : ""}` }));
  }
  return h("div", { class: "health" }, parts);
}

/** A secret or token shown this once, with a Copy button. */
export function shownOnce(label, value) {
  const input = h("input", { readonly: true, value, class: "secret" });
  const f = field(label, input);
  const done = h("span", { role: "status", class: "muted small" });
  const button = h("button", {
    type: "button",
    class: "secondary",
    text: "Copy",
    "aria-label": `Copy ${label.toLowerCase()}`,
    onclick: async () => {
      done.textContent = (await copy(value, input)) ? "Copied." : "Select it and copy by hand.";
    },
  });
  f.wrap.append(h("div", { class: "row" }, button, done));
  return f.wrap;
}

/** What a save or rotation revealed (secret, generated token), in a dialog. */
function revealed(title, w) {
  const items = [];
  if (w.signing_secret && !w.signing_secret.includes("*")) items.push(shownOnce("Signing secret", w.signing_secret));
  if (w.auth && w.auth.type === "bearer" && w.auth.token && !w.auth.token.includes("*")) items.push(shownOnce("Token", w.auth.token));
  if (items.length === 0) return;
  const d = dialog(
    title,
    h("p", { text: "Shown this once: copy it now." }),
    ...items,
    h("div", { class: "actions" }, h("button", { type: "button", text: "Done", onclick: () => d.close() })),
  );
}

export function webhooksPage(ctx) {
  const { api, readOnly } = ctx;
  const page = h("section", { "aria-labelledby": "webhooks-title" });
  const heading = h("h1", { id: "webhooks-title", text: "Webhooks" });
  const notice = h("div", { "aria-live": "polite" });
  let table;

  const toggle = async (w, button) => {
    button.disabled = true;
    try {
      const updated = await api.call("PATCH", api.projectPath(`/webhooks/${w.id}`), {
        body: { enabled: !w.enabled },
        headers: { "If-Match": String(w.version) },
      });
      Object.assign(w, updated);
      button.setAttribute("aria-checked", String(updated.enabled));
      button.querySelector(".switch-text").textContent = updated.enabled ? "On" : "Off";
      fill(notice, status(`${updated.name} is ${updated.enabled ? "on" : "off"}.`));
    } catch (e) {
      fill(notice, status(e.status === 409 ? `${w.name} changed elsewhere; the table is reloaded.` : e.message, "error"));
      table.reload();
    } finally {
      button.disabled = readOnly;
    }
  };

  table = pagedTable({
    label: "Webhooks",
    columns: ["On/Off", "Name", "URL", "Event Trigger", "Created", "Health"],
    empty: readOnly ? "No webhooks." : "No webhooks yet: Register Webhook adds one.",
    load: (cursor) => api.get(api.projectPath("/webhooks"), { cursor, limit: 20 }),
    row: (w) => {
      const button = h(
        "button",
        { type: "button", role: "switch", class: "switch", "aria-checked": String(w.enabled), "aria-label": `On/Off: ${w.name}`, disabled: readOnly },
        h("span", { class: "switch-text", text: w.enabled ? "On" : "Off" }),
      );
      button.addEventListener("click", () => toggle(w, button));
      const events = w.events.join(", ") + (w.channels && w.channels.length ? ` · channels: ${w.channels.join(", ")}` : "");
      return h(
        "tr",
        {},
        h("td", {}, button),
        h("td", {}, h("button", { type: "button", class: "link", text: w.name, onclick: () => details(ctx, w.id, () => table.reload()) })),
        h("td", { class: "url", text: w.url }),
        h("td", { text: events }),
        h("td", { text: when(w.created_at) }),
        h("td", {}, health(w)),
      );
    },
  });

  const register = h("button", { type: "button", text: "Register Webhook", onclick: () => registerDialog(ctx, () => table.reload(true)) });
  page.append(h("div", { class: "page-head" }, heading, readOnly ? null : register), notice, table.el);
  table.reload();
  return page;
}

function registerDialog(ctx, done) {
  const { api } = ctx;
  const form = webhookForm(null);
  const ok = h("button", { type: "submit", text: "OK" });
  const cancel = h("button", { type: "button", class: "secondary", text: "Cancel", onclick: () => d.close() });
  const el = h("form", { novalidate: true }, form.root, h("div", { class: "actions" }, ok, cancel));
  const d = dialog("Register Webhook", el);
  form.fields.name.control.focus();
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    let body;
    try {
      body = form.read();
    } catch (e) {
      form.showError(e);
      return;
    }
    for (const [k, v] of Object.entries(body)) if (v === null) delete body[k];
    ok.disabled = true;
    try {
      const created = await api.call("POST", api.projectPath("/webhooks"), { body });
      d.close();
      done();
      revealed("Webhook registered", created);
    } catch (e) {
      form.showError(e);
    } finally {
      ok.disabled = false;
    }
  });
}

/** The patch of what the form changed, and the event to render for (preview, test). */
function draft(form, webhook) {
  const now = form.read();
  const auth = now.auth;
  delete now.auth;
  const patch = mergePatch(editable(webhook), now);
  if (auth) patch.auth = auth;
  return patch;
}

async function details(ctx, id, changed) {
  const { api, readOnly } = ctx;
  let webhook;
  try {
    webhook = await api.get(api.projectPath(`/webhooks/${id}`));
  } catch (e) {
    const d = dialog("Webhook Details", status(e.message, "error"), h("button", { type: "button", text: "Close", onclick: () => d.close() }));
    return;
  }
  const previewOut = h("div", { class: "preview", "aria-live": "polite" });
  const eventInput = field("Preview event (JSON)", h("textarea", { rows: 3, placeholder: "Empty: a sample event" }));
  let timer = null;
  const requestBody = () => {
    const body = {};
    const patch = draft(form, webhook);
    if (Object.keys(patch).length) body.webhook = patch;
    const text = eventInput.control.value.trim();
    if (text) {
      try {
        body.event = JSON.parse(text);
      } catch {
        throw { field: eventInput, message: "The preview event is not valid JSON." };
      }
    }
    return body;
  };
  const preview = async () => {
    let body;
    try {
      body = requestBody();
    } catch (e) {
      fill(previewOut, status(e.message, "error"));
      return;
    }
    try {
      const p = await api.call("POST", api.projectPath(`/webhooks/${id}/preview`), { body });
      form.clearErrors();
      if (p.aborted !== null && p.aborted !== undefined) {
        fill(previewOut, status(`The template aborts this message${p.aborted ? `: ${p.aborted}` : ""}.`, "warn"));
        return;
      }
      fill(
        previewOut,
        h("p", { class: "mono", text: `${p.method} ${p.url}` }),
        h("dl", { class: "headers" }, Object.entries(p.headers ?? {}).flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })])),
        h("pre", { class: "body", text: p.body ?? "" }),
      );
    } catch (e) {
      fill(previewOut, status(e.message, "error"));
      if (e.field) form.showError(e, { focus: false });
    }
  };
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(preview, 300);
  };
  const form = webhookForm(webhook, { readOnly, onChange: schedule });
  eventInput.control.addEventListener("input", schedule);

  const meta = h(
    "dl",
    { class: "meta" },
    h("dt", { text: "ID" }), h("dd", { class: "mono", text: webhook.id }),
    h("dt", { text: "Version" }), h("dd", { text: webhook.version }),
    h("dt", { text: "Signing secret" }), h("dd", { class: "mono", text: webhook.signing_secret }),
    webhook.disabled_reason ? [h("dt", { text: "Disabled" }), h("dd", { text: `${webhook.disabled_reason}, ${when(webhook.disabled_at)}` })] : null,
  );
  const message = h("div", { "aria-live": "polite" });
  const actions = h("div", { class: "actions sticky" });
  const el = h("form", { novalidate: true }, meta, message, form.root, actions);

  const testOut = h("div", { class: "test-result", "aria-live": "polite" });
  const tabs = activity(ctx, webhook);
  const side = h("div", { class: "side" },
    h("section", { "aria-label": "Preview" }, h("h3", { text: "Preview" }), eventInput.wrap, previewOut),
    readOnly ? null : h("section", { class: "panel", "aria-label": "Test result" }, h("h3", { text: "Test" }), testOut),
  );
  const d = dialog("Webhook Details", h("div", { class: "details" }, el, side), tabs);
  d.classList.add("wide");

  const close = h("button", { type: "button", class: "secondary", text: readOnly ? "Close" : "Cancel", onclick: () => d.close() });
  if (readOnly) {
    actions.append(close);
  } else {
    const ok = h("button", { type: "submit", text: "OK" });
    const del = h("button", { type: "button", class: "danger", text: "Delete" });
    const rotate = h("button", { type: "button", class: "secondary", text: "Rotate" });
    const test = h("button", { type: "button", class: "secondary", text: "Test" });
    actions.append(ok, close, del, rotate, test);

    el.addEventListener("submit", async (event) => {
      event.preventDefault();
      let patch;
      try {
        patch = draft(form, webhook);
      } catch (e) {
        form.showError(e);
        return;
      }
      if (Object.keys(patch).length === 0) {
        d.close();
        return;
      }
      ok.disabled = true;
      try {
        const updated = await api.call("PATCH", api.projectPath(`/webhooks/${id}`), {
          body: patch,
          headers: { "If-Match": String(webhook.version) },
        });
        d.close();
        changed();
        revealed("Webhook saved", { auth: updated.auth });
      } catch (e) {
        if (e.status === 409) {
          const reload = h("button", { type: "button", class: "secondary", text: "Reload", onclick: () => { d.close(); details(ctx, id, changed); } });
          fill(message, h("div", { class: "notice error", role: "alert" }, "This webhook was changed elsewhere. Reload to see its current settings (your edits here are not saved). ", reload));
          reload.focus();
        } else {
          form.showError(e);
        }
      } finally {
        ok.disabled = false;
      }
    });

    del.addEventListener("click", () => {
      const yes = h("button", { type: "button", class: "danger", text: "Delete webhook" });
      const no = h("button", { type: "button", class: "secondary", text: "Keep it" });
      fill(message, h("div", { class: "notice warn", role: "alert" }, "Delete this webhook? Deliveries still pending for it will be skipped. ", yes, " ", no));
      no.addEventListener("click", () => fill(message));
      yes.addEventListener("click", async () => {
        try {
          await api.call("DELETE", api.projectPath(`/webhooks/${id}`));
          d.close();
          changed();
        } catch (e) {
          fill(message, status(e.message, "error"));
        }
      });
      yes.focus();
    });

    rotate.addEventListener("click", async () => {
      try {
        const rotated = await api.call("POST", api.projectPath(`/webhooks/${id}/rotate`));
        webhook.version = rotated.version;
        fill(message, h("div", { class: "notice" },
          h("p", { text: "A new signing secret. The previous one keeps signing alongside it for 24 hours." }),
          shownOnce("New signing secret", rotated.signing_secret),
        ));
      } catch (e) {
        fill(message, status(e.message, "error"));
      }
    });

    test.addEventListener("click", async () => {
      let body;
      try {
        body = requestBody();
      } catch (e) {
        fill(testOut, status(e.message, "error"));
        return;
      }
      test.disabled = true;
      fill(testOut, status("Sending…"));
      try {
        const r = await api.call("POST", api.projectPath(`/webhooks/${id}/test`), { body });
        const items = [
          h("p", { class: `outcome ${r.outcome}`, text: `${r.outcome === "delivered" ? "Delivered" : r.outcome === "aborted" ? "Aborted by the template" : "Failed"}${r.response ? ` — HTTP ${r.response.status}` : ""} in ${r.duration_ms} ms` }),
        ];
        if (r.error) items.push(h("p", { class: "notice error", text: r.error }));
        if (r.response) {
          items.push(
            h("h4", { text: "Response headers" }),
            h("dl", { class: "headers" }, Object.entries(r.response.headers).flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })])),
            h("h4", { text: "Response body" }),
            h("pre", { class: "body", "aria-label": "Response body", text: r.response.body }),
          );
        }
        fill(testOut, items);
      } catch (e) {
        fill(testOut, status(e.message, "error"));
        if (e.field) form.showError(e);
      } finally {
        test.disabled = false;
      }
    });
  }
  preview();
}

/** The Attempts and Deliveries tabs, and recover-since. */
function activity(ctx, webhook) {
  const { api, readOnly } = ctx;
  const base = api.projectPath(`/webhooks/${webhook.id}`);
  const statusFilter = field("Status", (() => {
    const s = h("select");
    for (const v of ["", "delivered", "failed", "retrying", "dead_lettered", "skipped"]) s.append(h("option", { value: v, text: v || "All" }));
    return s;
  })());
  const attempts = pagedTable({
    label: "Attempts",
    columns: ["Time", "Attempt", "Status", "HTTP", "Duration", "Error or response", "Delivery"],
    empty: "No attempts.",
    load: (cursor) => api.get(`${base}/attempts`, { cursor, status: statusFilter.control.value, limit: 20 }),
    row: (a) => h(
      "tr", {},
      h("td", { text: when(a.created_at) }),
      h("td", { text: a.attempt }),
      h("td", {}, h("span", { class: `badge ${a.status}`, text: a.status })),
      h("td", { text: a.status_code ?? "—" }),
      h("td", { text: `${a.duration_ms} ms` }),
      h("td", { class: "excerpt", text: a.error ?? a.response_excerpt ?? "" }),
      h("td", { class: "mono small", text: a.delivery_id }),
    ),
  });
  statusFilter.control.addEventListener("change", () => attempts.reload(true));
  const note = h("div", { "aria-live": "polite" });
  const deliveries = pagedTable({
    label: "Deliveries",
    columns: ["Created", "Event", "Status", "Attempts", "Last HTTP", "Next attempt", ""],
    empty: "No deliveries.",
    load: (cursor) => api.get(`${base}/deliveries`, { cursor, limit: 20 }),
    row: (dl) => {
      const resend = readOnly ? null : h("button", {
        type: "button", class: "secondary", text: "Resend", "aria-label": `Resend ${dl.id}`,
        onclick: async () => {
          try {
            await api.call("POST", `${base}/deliveries/${dl.id}/resend`);
            fill(note, status(`Resent ${dl.id}.`));
            setTimeout(() => deliveries.reload(), 1500);
          } catch (e) {
            fill(note, status(e.message, "error"));
          }
        },
      });
      return h(
        "tr", {},
        h("td", { text: when(dl.created_at) }),
        h("td", { class: "mono small", text: `${dl.event_type} ${dl.event_id}` }),
        h("td", {}, h("span", { class: `badge ${dl.status}`, text: dl.status })),
        h("td", { text: dl.attempts }),
        h("td", { text: dl.last_status_code ?? "—" }),
        h("td", { text: when(dl.next_attempt_at) }),
        h("td", {}, resend),
      );
    },
  });
  const since = field("Recover since", h("input", { type: "datetime-local", step: 1 }));
  const recover = readOnly ? null : h("div", { class: "recover" }, since.wrap, h("button", {
    type: "button", class: "secondary", text: "Recover",
    onclick: async () => {
      const value = since.control.value;
      if (!value) {
        fill(note, status("Choose a time to recover since.", "error"));
        return;
      }
      try {
        const r = await api.call("POST", `${base}/recover`, { body: { since: new Date(value).toISOString() } });
        fill(note, status(`${r.requeued} deliveries sent again.`));
        setTimeout(() => deliveries.reload(true), 1500);
      } catch (e) {
        fill(note, status(e.message, "error"));
      }
    },
  }));

  const panels = [
    ["Attempts", h("div", {}, statusFilter.wrap, attempts.el), () => attempts.reload(true)],
    ["Deliveries", h("div", {}, recover, deliveries.el), () => deliveries.reload(true)],
  ];
  const list = h("div", { role: "tablist", "aria-label": "Activity" });
  const wrap = h("section", { class: "panel activity" }, list);
  const tabs = panels.map(([name, panel, load], i) => {
    const tab = h("button", { type: "button", role: "tab", id: uid("tab"), text: name, "aria-selected": String(i === 0), tabindex: i === 0 ? 0 : -1 });
    panel.setAttribute("role", "tabpanel");
    panel.id = uid("panel");
    panel.setAttribute("aria-labelledby", tab.id);
    tab.setAttribute("aria-controls", panel.id);
    panel.hidden = i !== 0;
    list.append(tab);
    wrap.append(panel);
    return { tab, panel, load };
  });
  const select = (i) => {
    tabs.forEach((t, j) => {
      t.tab.setAttribute("aria-selected", String(i === j));
      t.tab.tabIndex = i === j ? 0 : -1;
      t.panel.hidden = i !== j;
    });
    tabs[i].tab.focus();
    tabs[i].load();
  };
  tabs.forEach((t, i) => {
    t.tab.addEventListener("click", () => select(i));
    t.tab.addEventListener("keydown", (e) => {
      if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
        e.preventDefault();
        select((i + (e.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length);
      }
    });
  });
  wrap.append(note);
  tabs[0].load();
  return wrap;
}
