/* Light or dark: the system's choice (prefers-color-scheme) until the person picks one with the toggle in
 * the top bar, which is remembered in localStorage. Loaded in <head> (not deferred, not inline: the CSP) so
 * the page is drawn in the right colours from the start. Charts listen for "folio:themechange". */
(function () {
  "use strict";
  const KEY = "folio-theme";
  const root = document.documentElement;
  const media = window.matchMedia("(prefers-color-scheme: dark)");

  function stored() {
    try { return localStorage.getItem(KEY); } catch (error) { return null; }
  }
  function current() { return root.dataset.theme || (media.matches ? "dark" : "light"); }
  function announce() { document.dispatchEvent(new CustomEvent("folio:themechange", { detail: { theme: current() } })); }

  const chosen = stored();
  if (chosen === "dark" || chosen === "light") root.dataset.theme = chosen;
  media.addEventListener("change", () => { if (!root.dataset.theme) announce(); });

  window.FolioTheme = {
    current: current,
    // A colour of the current theme, from the CSS custom properties (charts draw with these), resolved to
    // rgb(): the property itself holds light-dark(…, …), which a canvas cannot parse.
    color(name) {
      const probe = document.createElement("span");
      probe.hidden = true;
      probe.style.color = `var(${name})`;  // a CSSOM property, not a style attribute: the CSP allows it
      (document.body || root).append(probe);
      const resolved = getComputedStyle(probe).color;
      probe.remove();
      return resolved;
    },
  };

  document.addEventListener("DOMContentLoaded", () => {
    const button = document.getElementById("theme-toggle");
    if (!button) return;
    const label = () => {
      const next = current() === "dark" ? "light" : "dark";
      button.setAttribute("aria-label", `Switch to ${next} mode`);
      button.title = `Switch to ${next} mode`;
      button.textContent = current() === "dark" ? "☀" : "☾";
    };
    label();
    button.hidden = false;
    button.addEventListener("click", () => {
      root.dataset.theme = current() === "dark" ? "light" : "dark";
      try { localStorage.setItem(KEY, root.dataset.theme); } catch (error) { /* private mode: this page only */ }
      label();
      announce();
    });
    document.addEventListener("folio:themechange", label);
  });
})();
