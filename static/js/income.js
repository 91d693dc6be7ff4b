/* The income page: totals, a column chart by month or year, and tables by holding and by year, from
   GET /api/portfolios/{id}/income/. */
(function () {
  "use strict";
  const root = document.getElementById("income");
  if (!root) return;
  const currency = root.dataset.currency;
  let data = null;

  const F = window.FolioFormat;
  function money(value) { return `${F.money(value, currency)} ${currency}`; }
  function percent(ratio) { return F.percent(ratio, { fraction: true }); }
  function cell(text, numeric) {
    const td = document.createElement("td");
    if (numeric) td.className = "num";
    td.textContent = text;
    return td;
  }
  function field(name, text) { root.querySelector(`[data-field=${name}]`).textContent = text; }

  function drawChart(rows) {
    const box = document.getElementById("income-chart");
    box.replaceChildren();
    const shown = rows.slice(-36); // three years of months fit; older ones are in the tables
    const top = Math.max(0, ...shown.map((r) => Number(r.gross)));
    box.dataset.columns = String(shown.length);
    if (!shown.length) { box.textContent = "No dividends recorded yet."; return; }
    for (const row of shown) {
      const column = document.createElement("div");
      column.className = "column";
      column.title = `${row.period}: ${money(row.gross)} gross, ${money(row.net)} net`;
      column.dataset.period = row.period;
      const bar = document.createElement("span");
      bar.className = "column-bar";
      bar.style.height = top ? `${(Number(row.gross) / top) * 100}%` : "0";
      const label = document.createElement("span");
      label.className = "column-label";
      label.textContent = row.period.length === 7 ? row.period.slice(2) : row.period;
      column.append(bar, label);
      box.append(column);
    }
  }

  function draw() {
    field("ttm", money(data.ttm.gross));
    field("ttm_net", `${money(data.ttm.net)} net`);
    field("yield_on_cost", percent(data.yield_on_cost));
    field("total", money(data.total.gross));
    field("total_net", `${money(data.total.net)} net`);
    const holdings = root.querySelector("[data-testid=income-holdings] tbody");
    holdings.replaceChildren(...data.holdings.map((h) => {
      const tr = document.createElement("tr");
      tr.dataset.symbol = h.symbol;
      tr.append(cell(h.symbol + (h.held ? "" : " (sold)")), cell(money(h.ttm.gross), true),
        cell(percent(h.yield_on_cost), true), cell(money(h.total.gross), true), cell(money(h.total.withheld), true),
        cell(money(h.total.net), true), cell(String(h.total.payments), true));
      return tr;
    }));
    const years = root.querySelector("[data-testid=income-years] tbody");
    years.replaceChildren(...data.by_year.slice().reverse().map((y) => {
      const tr = document.createElement("tr");
      tr.append(cell(y.period), cell(money(y.gross), true), cell(money(y.withheld), true), cell(money(y.net), true),
        cell(String(y.payments), true));
      return tr;
    }));
    const view = root.querySelector("button.range.active").dataset.view;
    drawChart(view === "year" ? data.by_year : data.by_month);
    const notes = [];
    if (data.fx_missing) notes.push(`${data.fx_missing} payment(s) left out until their exchange rate is fetched.`);
    document.getElementById("income-status").textContent = notes.join(" ");
    root.dataset.loaded = "true";
  }

  root.querySelectorAll("button.range").forEach((button) => button.addEventListener("click", () => {
    root.querySelectorAll("button.range").forEach((b) => b.classList.toggle("active", b === button));
    if (data) draw();
  }));

  window.FolioApi.get(root.dataset.url)
    .then((body) => { data = body; draw(); })
    .catch((error) => { document.getElementById("income-status").textContent = "Income could not be loaded: " + error.message; });
})();
