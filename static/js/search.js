/* Instrument search in the trade form: <input data-instrument-search="/api/instruments/search/">.
   Typing asks the API (debounced); known instruments come back at once, each provider's answer when a
   worker has it — the list is redrawn as they arrive, so the page never waits on a provider. Picking a
   result fills the form's symbol, currency, asset class and provider (and name, where the form has one). */
(function () {
  "use strict";
  const DEBOUNCE_MS = 250;
  const POLL_MS = 400;
  const MAX_POLLS = 20; // about 8 s: a provider slower than that is reported as still searching

  function attach(input) {
    const form = input.form;
    const list = document.createElement("ul");
    list.className = "search-results";
    list.setAttribute("role", "listbox");
    list.hidden = true;
    const status = document.createElement("p");
    status.className = "search-status hint";
    status.setAttribute("aria-live", "polite");
    input.insertAdjacentElement("afterend", status);
    input.insertAdjacentElement("afterend", list);
    input.setAttribute("autocomplete", "off");
    let timer = null;
    let asked = ""; // the query the list shows, so a late answer for an older one is dropped

    function field(name) { return form.elements.namedItem(name); }

    function fill(result) {
      input.value = result.symbol;
      const values = { currency: result.currency, asset_class: result.asset_class, provider: result.provider,
        name: result.name };
      for (const [name, value] of Object.entries(values)) {
        const element = field(name);
        if (element && value) element.value = value;
      }
      list.hidden = true;
      status.textContent = `${result.symbol}: ${result.name || "no name"} · ${result.currency} · ${result.provider}`;
    }

    function draw(body) {
      list.replaceChildren();
      for (const result of body.results) {
        const item = document.createElement("li");
        item.setAttribute("role", "option");
        item.tabIndex = -1;
        item.dataset.symbol = result.symbol;
        const symbol = document.createElement("strong");
        symbol.textContent = result.symbol;
        const detail = document.createElement("span");
        detail.textContent = ` ${result.name} · ${[result.exchange, result.currency, result.asset_class].filter(Boolean).join(" · ")}`;
        const source = document.createElement("em");
        source.textContent = result.known ? " in Folio" : ` ${result.provider}`;
        item.append(symbol, detail, source);
        item.addEventListener("mousedown", (event) => { event.preventDefault(); fill(result); });
        item.addEventListener("keydown", (event) => {
          if (event.key === "Enter") { event.preventDefault(); fill(result); input.focus(); }
          if (event.key === "ArrowDown" && item.nextElementSibling) item.nextElementSibling.focus();
          if (event.key === "ArrowUp") (item.previousElementSibling || input).focus();
          if (event.key === "Escape") { list.hidden = true; input.focus(); }
        });
        list.append(item);
      }
      list.hidden = !body.results.length;
      const notes = [];
      if (body.pending.length) notes.push(`searching ${body.pending.join(", ")}…`);
      if (body.failed.length) notes.push(`${body.failed.join(", ")} unavailable right now`);
      if (!body.results.length && body.complete) notes.push("no instrument found");
      status.textContent = notes.join(" · ");
    }

    async function ask(query, polls) {
      let body;
      try {
        body = await window.FolioApi.get(`${input.dataset.instrumentSearch}?q=${encodeURIComponent(query)}`);
      } catch (error) {
        status.textContent = "Search unavailable: " + error.message;
        return;
      }
      if (query !== asked) return;
      draw(body);
      if (!body.complete && polls < MAX_POLLS) setTimeout(() => { if (query === asked) ask(query, polls + 1); }, POLL_MS);
    }

    input.addEventListener("input", () => {
      clearTimeout(timer);
      const query = input.value.trim();
      asked = query;
      if (!query) { list.hidden = true; status.textContent = ""; return; }
      timer = setTimeout(() => ask(query, 0), DEBOUNCE_MS);
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "ArrowDown" && !list.hidden && list.firstElementChild) {
        event.preventDefault();
        list.firstElementChild.focus();
      }
      if (event.key === "Escape") list.hidden = true;
    });
    input.addEventListener("blur", () => setTimeout(() => {
      if (!list.contains(document.activeElement)) list.hidden = true;
    }, 150));
  }

  document.querySelectorAll("input[data-instrument-search]").forEach(attach);
})();
