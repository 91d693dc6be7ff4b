/* The one way the pages talk to the API (loaded by base.html, before every page's script): JSON in and out,
   the session's cookie and CSRF token, and the same answers to the same failures everywhere — signed out
   (401/403) goes to the login page and back, an unreachable server or an error status is an Error whose
   message can be shown as it is (the API's own `detail`, or each field's messages, when it gives them). */
(function () {
  "use strict";

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function problemOf(body, status) {
    if (body && typeof body === "object") {
      if (body.detail) return String(body.detail);
      const messages = Object.values(body).flat().filter((value) => typeof value === "string");
      if (messages.length) return messages.join(" ");
    }
    return "The server answered " + status + ".";
  }

  /* request(url, {method, body}) → {status, body}; body is sent as JSON. */
  async function request(url, options) {
    const method = (options && options.method) || "GET";
    const headers = { Accept: "application/json" };
    const init = { method, credentials: "same-origin", headers };
    if (method !== "GET" && method !== "HEAD") headers["X-CSRFToken"] = csrfToken();
    if (options && options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (error) {
      throw new Error("The server could not be reached. Check your connection and try again.");
    }
    let body = null;
    try { body = await response.json(); } catch (error) { body = null; }
    if (response.status === 401 || response.status === 403) {
      window.location.assign("/accounts/login/?next=" + encodeURIComponent(window.location.pathname + window.location.search));
      throw new Error("Signed out");
    }
    if (response.status >= 400) {
      const error = new Error(problemOf(body, response.status));
      error.status = response.status;
      error.body = body;
      throw error;
    }
    return { status: response.status, body };
  }

  async function get(url) { return (await request(url)).body; }

  window.FolioApi = { request, get, csrfToken };
})();
