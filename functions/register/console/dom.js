// Building the page. Every value from the API or a receiver becomes a text node or an
// attribute, never markup: nothing here parses HTML.

/** An element: `props` are attributes, except `on<event>` (listeners), `text` (its text)
 *  and boolean attributes given as true/false; children are nodes or strings. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "text") {
      el.textContent = String(value);
    } else if (key === "value") {
      el.value = String(value);
    } else if (key === "checked") {
      el.checked = Boolean(value);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces an element's content. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

let ids = 0;
/** A fresh id for tying a label or a message to its control. */
export function uid(prefix) {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** A labelled control: `<label>` + the control + a message slot the control's
 *  `aria-describedby` points at (where a field's error is shown). */
export function field(label, control, hint) {
  const id = control.id || uid("f");
  control.id = id;
  const message = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
  const described = [message.id];
  let hintEl = null;
  if (hint) {
    hintEl = h("p", { class: "hint", id: `${id}-hint`, text: hint });
    described.push(hintEl.id);
  }
  control.setAttribute("aria-describedby", described.join(" "));
  const wrap = h("div", { class: "field" }, h("label", { for: id, text: label }), control, hintEl, message);
  return { wrap, control, message };
}

/** Shows (or, with null, clears) a field's error and marks the control invalid. */
export function setError(f, text) {
  if (text) {
    f.message.textContent = text;
    f.message.hidden = false;
    f.control.setAttribute("aria-invalid", "true");
  } else {
    f.message.textContent = "";
    f.message.hidden = true;
    f.control.removeAttribute("aria-invalid");
  }
}

/** A date as this browser's locale writes it, or a dash. */
export function when(value) {
  if (!value) return "—";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleString();
}

/** A status line announced to screen readers. */
export function status(text, kind = "info") {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status", text });
}

/** Copies text, with a fallback for pages served over plain HTTP (no Clipboard API). */
export async function copy(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (input) {
      input.select();
      return document.execCommand("copy");
    }
    return false;
  }
}

/** A modal dialog named by its heading; Escape and Cancel close it. */
export function dialog(title, ...content) {
  const heading = h("h2", { id: uid("dialog-title"), text: title });
  const el = h("dialog", { "aria-labelledby": heading.id, class: "dialog" }, heading, ...content);
  el.addEventListener("close", () => el.remove());
  document.body.append(el);
  el.showModal();
  return el;
}
