// The webhook form, shared by Register Webhook and Webhook Details: every field the API
// takes, read back as a create body or as a merge patch of what changed.

import { h, field, setError, uid } from "./dom.js";

const METHODS = ["POST", "GET", "PUT", "PATCH", "DELETE"];

/** A random bearer token, made in the browser (what Generate puts in the field). */
export function randomToken() {
  const bytes = new Uint8Array(24);
  crypto.getRandomValues(bytes);
  return "hlt_" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function select(options, value) {
  const el = h("select");
  for (const [v, label] of options) el.append(h("option", { value: v, text: label }));
  el.value = value;
  return el;
}

function list(value) {
  return String(value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Rows of name/value inputs (headers, JSON body fields). */
function pairs(legend, noun, entries) {
  const rows = h("div", { class: "pairs" });
  const message = h("p", { class: "field-error", id: uid("pairs-error"), hidden: true });
  const add = (k = "", v = "") => {
    const n = rows.children.length + 1;
    const key = h("input", { "aria-label": `${noun} name ${n}`, value: k, autocomplete: "off" });
    const val = h("input", { "aria-label": `${noun} value ${n}`, value: v, autocomplete: "off" });
    key.setAttribute("aria-describedby", message.id);
    val.setAttribute("aria-describedby", message.id);
    const row = h("div", { class: "pair" }, key, val);
    row.append(
      h("button", {
        type: "button",
        class: "secondary",
        "aria-label": `Remove ${noun.toLowerCase()} ${n}`,
        text: "Remove",
        onclick: () => row.remove(),
      }),
    );
    rows.append(row);
    return key;
  };
  for (const [k, v] of Object.entries(entries ?? {})) add(k, v);
  const wrap = h(
    "fieldset",
    { class: "field" },
    h("legend", { text: legend }),
    rows,
    h("button", { type: "button", class: "secondary", text: `Add ${noun.toLowerCase()}`, onclick: () => add().focus() }),
    message,
  );
  const get = () => {
    const out = {};
    for (const row of rows.children) {
      const [k, v] = row.querySelectorAll("input");
      if (k.value.trim()) out[k.value.trim()] = v.value;
    }
    return out;
  };
  const first = () => rows.querySelector("input") ?? wrap.querySelector("button");
  /** The field as an error about entry `name` is shown: at that entry's value. */
  const entry = (name) => {
    for (const row of rows.children) {
      const [k, v] = row.querySelectorAll("input");
      if (k.value.trim() === name) return { wrap, message, control: v };
    }
    return { wrap, message, control: first() };
  };
  return { wrap, get, message, entry, get control() { return first(); } };
}

/** The form. `webhook` is a webhook as the API shows it (editing), or null (creating).
 *  `onChange` is called on every edit (the live preview). */
export function webhookForm(webhook, { readOnly = false, onChange = () => {} } = {}) {
  const w = webhook ?? {};
  const f = {};
  const root = h("div", { class: "webhook-form" });

  f.name = field("Name", h("input", { value: w.name ?? "", required: true, autocomplete: "off" }));
  f.url = field("URL", h("input", { value: w.url ?? "", required: true, inputmode: "url", autocomplete: "off" }), "A Liquid template, e.g. https://api.example.com/u/{{ user.id }}");
  f.events = field("Event types", h("input", { value: (w.events ?? []).join(", "), autocomplete: "off" }), "Comma-separated; * means every type.");

  const auth = w.auth ?? { type: "none" };
  f.authType = field("Auth", select([["none", "None"], ["bearer", "Bearer token"], ["basic", "Basic"], ["jwt", "JWT (HS256)"]], auth.type));
  const masked = webhook !== null;
  f.token = field("Token", h("input", { value: "", autocomplete: "off", placeholder: masked && auth.type === "bearer" ? `${auth.token} (unchanged)` : "empty: Hookline generates one" }));
  const generate = h("button", {
    type: "button",
    class: "secondary",
    text: "Generate",
    onclick: () => {
      f.token.control.value = randomToken();
      f.authType.control.value = "bearer";
      showAuth();
      touchedAuth = true;
      onChange();
    },
  });
  f.token.wrap.querySelector("label").after(h("span", { class: "with-button" }, f.token.control, generate));
  f.username = field("Username", h("input", { value: auth.type === "basic" ? auth.username ?? "" : "", autocomplete: "off" }));
  f.password = field("Password", h("input", { type: "password", value: "", autocomplete: "new-password", placeholder: masked && auth.type === "basic" ? "(unchanged)" : "" }));
  f.secret = field("JWT secret", h("input", { type: "password", value: "", autocomplete: "new-password", placeholder: masked && auth.type === "jwt" ? "(unchanged)" : "" }));
  f.claims = field("JWT claims (JSON)", h("textarea", { rows: 2, text: auth.type === "jwt" && auth.claims ? JSON.stringify(auth.claims) : "" }));
  f.jwtTtl = field("JWT lifetime (seconds)", h("input", { type: "number", min: 1, max: 86400, value: auth.type === "jwt" ? auth.ttl_seconds ?? 300 : 300 }));
  let touchedAuth = !masked;
  const authFields = { bearer: [f.token], basic: [f.username, f.password], jwt: [f.secret, f.claims, f.jwtTtl] };
  const showAuth = () => {
    for (const [type, fields] of Object.entries(authFields)) for (const x of fields) x.wrap.hidden = f.authType.control.value !== type;
    // As in seed 004's dialog, Token and Generate are there from the start: a token
    // typed or generated with no auth chosen means a bearer token.
    if (f.authType.control.value === "none") f.token.wrap.hidden = false;
  };
  f.token.control.addEventListener("input", () => {
    if (f.token.control.value.trim() && f.authType.control.value === "none") {
      f.authType.control.value = "bearer";
      showAuth();
    }
  });
  for (const x of [f.authType, f.token, f.username, f.password, f.secret, f.claims, f.jwtTtl]) {
    x.control.addEventListener("input", () => (touchedAuth = true));
  }
  f.authType.control.addEventListener("change", showAuth);

  f.method = field("Method", select(METHODS.map((m) => [m, m]), w.method ?? "POST"));
  f.timeout = field("Timeout (seconds)", h("input", { type: "number", min: 1, max: 90, value: w.timeout_seconds ?? 30 }));
  f.enabled = field("Enabled", h("input", { type: "checkbox", checked: w.enabled ?? true }));
  f.headers = pairs("Headers", "Header", w.headers);

  const body = w.body ?? null;
  f.bodyType = field("Body", select([["envelope", "Standard envelope"], ["json", "JSON fields"], ["raw", "Raw text"]], body ? body.type : "envelope"));
  f.fields = pairs("JSON fields", "Field", body && body.type === "json" ? body.fields : {});
  f.raw = field("Raw body", h("textarea", { rows: 5, text: body && body.type === "raw" ? body.template : "" }));
  f.contentType = field("Content type", h("input", { value: body && body.type === "raw" ? body.content_type ?? "" : "text/plain; charset=utf-8", autocomplete: "off" }));
  const showBody = () => {
    const t = f.bodyType.control.value;
    f.fields.wrap.hidden = t !== "json";
    f.raw.wrap.hidden = t !== "raw";
    f.contentType.wrap.hidden = t !== "raw";
  };
  f.bodyType.control.addEventListener("change", showBody);

  f.locales = field("Locales (JSON)", h("textarea", { rows: 3, text: w.locales && Object.keys(w.locales).length ? JSON.stringify(w.locales, null, 1) : "" }), 'e.g. {"ko": {"url": "https://…/ko"}}');
  f.defaultLocale = field("Default locale", h("input", { value: w.default_locale ?? "", autocomplete: "off" }));
  f.channels = field("Channels", h("input", { value: (w.channels ?? []).join(", "), autocomplete: "off" }), "Comma-separated; empty means every channel.");
  f.filter = field("Filter", h("input", { value: w.filter ?? "", autocomplete: "off" }), 'A Liquid condition, e.g. data.total > 100 and user.locale == "ko"');

  const formError = h("p", { class: "notice error", role: "alert", hidden: true });
  const section = (title, ...items) => h("fieldset", { class: "group" }, h("legend", { text: title }), ...items);
  root.append(
    formError,
    f.name.wrap,
    f.url.wrap,
    f.events.wrap,
    section("Authentication", f.authType.wrap, f.token.wrap, f.username.wrap, f.password.wrap, f.secret.wrap, f.claims.wrap, f.jwtTtl.wrap),
    section("Request", f.method.wrap, f.timeout.wrap, f.headers.wrap, f.bodyType.wrap, f.fields.wrap, f.raw.wrap, f.contentType.wrap),
    section("Routing", f.channels.wrap, f.filter.wrap, f.enabled.wrap),
    section("Locales", f.locales.wrap, f.defaultLocale.wrap),
  );
  showAuth();
  showBody();
  root.addEventListener("input", () => onChange());
  root.addEventListener("change", () => onChange());
  if (readOnly) for (const el of root.querySelectorAll("input, select, textarea, button")) el.disabled = true;

  const json = (x, label) => {
    const text = x.control.value.trim();
    if (!text) return null;
    try {
      return JSON.parse(text);
    } catch {
      throw { field: x, message: `${label} is not valid JSON.` };
    }
  };

  /** The webhook the form describes, as the API takes it (auth only when touched). */
  const read = () => {
    const out = {
      name: f.name.control.value,
      url: f.url.control.value,
      events: list(f.events.control.value),
      method: f.method.control.value,
      headers: f.headers.get(),
      timeout_seconds: Number(f.timeout.control.value),
      enabled: f.enabled.control.checked,
      channels: list(f.channels.control.value),
      filter: f.filter.control.value.trim() ? f.filter.control.value : null,
      locales: json(f.locales, "Locales") ?? {},
      default_locale: f.defaultLocale.control.value.trim() || null,
    };
    const t = f.bodyType.control.value;
    out.body =
      t === "json"
        ? { type: "json", fields: f.fields.get() }
        : t === "raw"
          ? { type: "raw", template: f.raw.control.value, content_type: f.contentType.control.value }
          : null;
    if (touchedAuth) {
      const type = f.authType.control.value;
      if (type === "none") out.auth = { type };
      if (type === "bearer") {
        const token = f.token.control.value.trim();
        out.auth = token ? { type, token } : masked && auth.type === "bearer" ? undefined : { type, generate: true };
      }
      if (type === "basic") {
        out.auth = { type, username: f.username.control.value, password: f.password.control.value };
      }
      if (type === "jwt") {
        out.auth = { type, secret: f.secret.control.value, ttl_seconds: Number(f.jwtTtl.control.value) };
        const claims = json(f.claims, "JWT claims");
        if (claims) out.auth.claims = claims;
      }
      if (out.auth === undefined) delete out.auth;
    }
    return out;
  };

  /** Where an API error's `field` belongs. */
  const fieldFor = (path) => {
    const p = String(path ?? "").replace(/^webhook\./, "");
    const top = p.split(/[.[]/)[0];
    const map = {
      name: f.name, url: f.url, events: f.events, method: f.method, headers: f.headers,
      timeout_seconds: f.timeout, enabled: f.enabled, channels: f.channels, filter: f.filter,
      locales: f.locales, default_locale: f.defaultLocale,
    };
    if (top === "headers" && p.startsWith("headers.")) return f.headers.entry(p.slice("headers.".length));
    if (top === "body") {
      if (p.startsWith("body.fields.")) return f.fields.entry(p.slice("body.fields.".length));
      if (p.startsWith("body.fields")) return f.fields;
      if (p === "body.template") return f.raw;
      if (p === "body.content_type") return f.contentType;
      return f.bodyType;
    }
    if (top === "auth") {
      const sub = p.split(".")[1];
      return { token: f.token, username: f.username, password: f.password, secret: f.secret, claims: f.claims, ttl_seconds: f.jwtTtl }[sub] ?? f.authType;
    }
    return map[top] ?? null;
  };

  const all = Object.values(f);
  const clearErrors = () => {
    formError.hidden = true;
    for (const x of all) setError(x, null);
    for (const el of root.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  };
  /** Shows an error at its field (or above the form), and focuses that field. */
  const showError = (error, { focus = true } = {}) => {
    clearErrors();
    const target = error.field instanceof Object && error.field.control ? error.field : fieldFor(error.field);
    if (target) {
      setError(target, error.message);
      target.wrap.hidden = false;
      if (focus) target.control.focus();
    } else {
      formError.textContent = error.message;
      formError.hidden = false;
    }
  };

  return { root, read, showError, clearErrors, fields: f };
}

function isObject(x) {
  return x !== null && typeof x === "object" && !Array.isArray(x);
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** RFC 7396: the merge patch that turns `from` into `to` (removed keys become null). */
export function mergePatch(from, to) {
  if (!isObject(from) || !isObject(to)) return to;
  const patch = {};
  for (const key of Object.keys(from)) if (!(key in to)) patch[key] = null;
  for (const [key, value] of Object.entries(to)) {
    if (!(key in from)) patch[key] = value;
    else if (!same(from[key], value)) {
      // A body whose type changes is replaced whole by the API; otherwise objects merge.
      patch[key] = isObject(value) && isObject(from[key]) && from[key].type === value.type ? mergePatch(from[key], value) : value;
    }
  }
  return patch;
}

/** The editable part of a webhook as the API shows it, in the form's terms. */
export function editable(w) {
  return {
    name: w.name,
    url: w.url,
    events: w.events ?? [],
    method: w.method ?? "POST",
    headers: w.headers ?? {},
    timeout_seconds: w.timeout_seconds,
    enabled: w.enabled,
    channels: w.channels ?? [],
    filter: w.filter ?? null,
    locales: w.locales ?? {},
    default_locale: w.default_locale ?? null,
    body: w.body ?? null,
  };
}
