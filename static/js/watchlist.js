/* The watchlist page: GET /api/watchlist/ drawn as a table (re-read every minute), a form that follows an
   instrument (POST, the symbol field searching as you type: search.js) and buttons that unfollow (DELETE). */
(function () {
  "use strict";
  const root = document.getElementById("watchlist");
  if (!root) return;
  const form = document.getElementById("watch-form");
  const problem = document.getElementById("watch-error");
  const RELOAD_MS = 60000;

  function cell(text, numeric, cls) {
    const td = document.createElement("td");
    if (numeric) td.className = "num";
    if (cls) td.classList.add(cls);
    td.textContent = text;
    return td;
  }
  const F = window.FolioFormat;

  function draw(rows) {
    const body = root.querySelector("tbody");
    if (!rows.length) {
      const empty = cell("Nothing followed yet: search for an instrument above.");
      empty.colSpan = 7;
      const tr = document.createElement("tr");
      tr.append(empty);
      body.replaceChildren(tr);
      root.dataset.loaded = "true";
      return;
    }
    const label = F.instrumentLabels(rows);
    body.replaceChildren(...rows.map((row) => {
      const tr = document.createElement("tr");
      tr.dataset.symbol = row.symbol;
      tr.dataset.instrumentId = String(row.instrument_id);
      const symbol = document.createElement("td");
      const link = document.createElement("a");
      // The symbol alone opens your manual KO, never the shared one beside it: the link names the instrument.
      link.href = `${root.dataset.instrumentUrl.replace("SYMBOL", encodeURIComponent(row.symbol))}?instrument=${row.instrument_id}`;
      link.textContent = label(row);
      symbol.append(link);
      // The dashboard's colours (folio.css): a change of 0 is neither.
      const change = row.day_change === null ? 0 : Number(row.day_change);
      const direction = change > 0 ? "pos" : change < 0 ? "neg" : "";
      const asOf = row.price_as_of ? row.price_as_of + (row.stale ? " (stale)" : "") :
        (row.verification_status === "unknown" ? "unknown to its provider" : "waiting for prices");
      const remove = document.createElement("td");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "link danger";
      button.textContent = "Unfollow";
      button.addEventListener("click", () => unfollow(row.id));
      remove.append(button);
      tr.append(symbol, cell(row.name), cell(row.price === null ? "—" : `${F.price(row.price, row.currency)} ${row.currency}`, true),
        cell(F.money(row.day_change, row.currency, { signed: true }), true, direction),
        cell(F.percent(row.day_change_percent, { signed: true }), true, direction),
        cell(asOf), remove);
      tr.querySelector("td:nth-child(3)").dataset.field = "price";
      tr.querySelector("td:nth-child(4)").dataset.field = "day_change";
      return tr;
    }));
    root.dataset.loaded = "true";
  }

  function complain(text) {
    problem.textContent = text;
    problem.hidden = false;
  }

  async function load() {
    try {
      draw((await window.FolioApi.get(root.dataset.url)).results);
    } catch (error) {
      complain("The watchlist could not be loaded: " + error.message);
    }
  }

  async function unfollow(id) {
    problem.hidden = true;
    try {
      await window.FolioApi.request(`${root.dataset.url}${id}/`, { method: "DELETE" });
    } catch (error) {
      complain(error.message);
    }
    load();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.hidden = true;
    const values = {};
    for (const name of ["symbol", "provider", "asset_class", "currency", "name"]) {
      const value = form.elements.namedItem(name).value.trim();
      if (value) values[name] = value;
    }
    try {
      await window.FolioApi.request(root.dataset.url, { method: "POST", body: values });
    } catch (error) {
      complain(error.message);
      return;
    }
    form.reset();
    load();
  });
  // A new symbol typed by hand names no provider: drop what an earlier pick filled in.
  form.elements.namedItem("symbol").addEventListener("input", () => {
    for (const name of ["provider", "asset_class", "currency", "name"]) form.elements.namedItem(name).value = "";
  });

  load();
  setInterval(load, RELOAD_MS);
})();
