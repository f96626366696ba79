// The JSON API, as the console speaks to it: same origin, `Authorization: Bearer`.

export class ApiError extends Error {
  constructor(status, code, message, field, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field ?? null;
    this.retryAfter = retryAfter ?? null;
  }
}

export class Api {
  constructor(credential, project) {
    this.credential = credential;
    this.project = project;
    /** Called when the credential stops working (401), e.g. a portal link expiring. */
    this.onUnauthorized = () => {};
  }

  /** `path` under the project, e.g. `/webhooks`. */
  projectPath(path) {
    return `/v1/projects/${encodeURIComponent(this.project)}${path}`;
  }

  async call(method, path, { body, headers = {}, query } = {}) {
    let url = path;
    if (query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
      const s = q.toString();
      if (s) url += `?${s}`;
    }
    const init = { method, headers: { Authorization: `Bearer ${this.credential}`, ...headers } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (e) {
      throw new ApiError(0, "network", `The API could not be reached (${e.message}).`);
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = text;
      }
    }
    if (!response.ok) {
      const err = data && data.error ? data.error : {};
      const error = new ApiError(
        response.status,
        err.code ?? "http_error",
        err.message ?? `HTTP ${response.status}`,
        err.field,
        response.headers.get("Retry-After"),
      );
      if (response.status === 401) this.onUnauthorized(error);
      throw error;
    }
    return data;
  }

  get(path, query) {
    return this.call("GET", path, { query });
  }
}

/** What a credential is (`GET /v1/portal/session`), before any project is chosen. */
export async function session(credential) {
  const api = new Api(credential, null);
  return api.get("/v1/portal/session");
}
