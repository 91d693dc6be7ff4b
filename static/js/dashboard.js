/* The dashboard fills itself in: totals, then holdings, then the chart (which may still be in the
 * making: then a progress bar fed by the chart generator's progress until it is ready). Every number
 * comes from the API as a decimal string and is only formatted here, never recomputed. */
(function () {
  "use strict";

  const root = document.getElementById("dashboard");
  if (!root) return;
  const portfolioId = root.dataset.portfolio;
  const currency = root.dataset.currency;
  const POLL_MS = 500;
  const POLL_LIMIT_MS = 120000;
  const state = { range: "1Y", holdings: [], sort: { key: "market_value", desc: true }, plot: null, benchmarkPlot: null,
    chartToken: 0, performanceToken: 0 };

  // --- helpers -------------------------------------------------------------------------------

  // Every figure through the one formatting rule (static/js/format.js).
  const F = window.FolioFormat;
  function money(text) { return F.money(text, currency); }
  function signed(text) { return F.money(text, currency, { signed: true }); }
  function pct(text) { return F.percent(text, { signed: true }); }
  function rate(text) { return F.percent(text, { fraction: true, signed: true }); }
  const color = (name) => window.FolioTheme.color(name);
  const dateOf = (seconds) => new Date(seconds * 1000).toISOString().slice(0, 10);
  // The legend shows the point under the cursor, and the latest one when there is none (not "--").
  function legendValue(format) {
    return (u, v, seriesIndex) => {
      if (v == null && u.cursor.idx == null) { const all = u.data[seriesIndex]; v = all[all.length - 1]; }
      return v == null ? "—" : format(v);
    };
  }
  function axes(values) {
    const axis = { stroke: color("--chart-axis"), grid: { stroke: color("--chart-grid") }, ticks: { stroke: color("--chart-grid") } };
    return [axis, Object.assign({}, axis, values)];
  }
  // A chart follows its box: redrawn at the box's width whenever that changes (phone rotation, sidebar…).
  function followWidth(box, plot, height) {
    const observer = new ResizeObserver(() => { if (box.clientWidth) plot.setSize({ width: box.clientWidth, height: height() }); });
    observer.observe(box);
    return observer;
  }
  const chartHeight = () => (window.innerWidth < 600 ? 220 : 320);
  const benchmarkHeight = () => (window.innerWidth < 600 ? 180 : 220);
  function tone(el, text) {
    el.classList.remove("pos", "neg");
    if (text != null && Number(text) !== 0) el.classList.add(Number(text) > 0 ? "pos" : "neg");
  }
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "text") node.textContent = v; else if (k === "class") node.className = v; else node.setAttribute(k, v);
    });
    (children || []).forEach((child) => node.append(child));
    return node;
  }
  function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }
  const api = window.FolioApi.request;

  function banner(kind, text, testid) {
    const box = document.getElementById("banners");
    const existing = box.querySelector(`[data-testid="${testid}"]`);
    if (existing) existing.remove();
    if (text) box.append(el("div", { class: "flash " + kind, role: kind === "error" ? "alert" : "status", "data-testid": testid, text: text }));
  }

  function showProgress(container, percent, text) {
    container.hidden = false;
    container.querySelector(".bar").style.width = Math.max(2, Math.min(100, percent)) + "%";
    container.querySelector(".progress-text").textContent = text;
  }

  // --- totals --------------------------------------------------------------------------------

  async function loadInitial() {
    const section = root.querySelector("[data-testid=totals]");
    try {
      const data = (await api(`/api/dashboard-initial-data/${portfolioId}/`)).body;
      banner("error", "", "totals-error");  // an earlier failure's, answered now
      const set = (field, text) => { const node = section.querySelector(`[data-field="${field}"]`); node.textContent = text; return node; };
      set("total_value", money(data.total_value)).append(" ", el("small", { text: currency }));
      tone(set("day_change", data.day_change == null ? "—" : signed(data.day_change) + " (" + pct(data.day_change_percent) + ")"), data.day_change);
      tone(set("unrealized_gain", signed(data.unrealized_gain) + " (" + pct(data.unrealized_gain_percent) + ")"), data.unrealized_gain);
      set("total_cost", money(data.total_cost));
      tone(set("realized_gain", signed(data.realized_gain)), data.realized_gain);
      set("holdings_count", F.number(data.holdings_count, 0));
      set("prices_as_of", data.prices_as_of ? "prices as of " + data.prices_as_of : "");
      renderAccounts(data.accounts || []);
      section.setAttribute("aria-busy", "false");
      section.dataset.loaded = "true";
      section.dataset.loadedAt = String(performance.now());
      banner("warning", data.stale_count ? `${data.stale_count} price${data.stale_count > 1 ? "s are" : " is"} stale (older than the last market close); newer ones are being fetched.` : "", "stale-banner");
      const unknown = data.unknown_symbols || [];
      banner("error", unknown.length ? `${unknown.join(", ")} ${unknown.length > 1 ? "are" : "is"} unknown to ${unknown.length > 1 ? "their provider" : "its provider"} — check the symbol (edit the transaction, or pick the right provider).` : "", "unknown-banner");
      showHistory(data.history);
      banner("error", data.providers_failing.length ? `Price provider${data.providers_failing.length > 1 ? "s" : ""} ${data.providers_failing.join(", ")} failing: prices are kept as they are and retried automatically.` : "", "provider-banner");
      banner("warning", data.fx_missing_count ? `${F.plural(data.fx_missing_count, "holding")} in another currency ${data.fx_missing_count === 1 ? "lacks" : "lack"} an exchange rate: the amounts that cannot be converted are left out of the totals until it is fetched.` : "", "fx-banner");
      if (data.holdings_count === 0) {
        banner("info", "", "empty-banner");
        const box = document.getElementById("banners");
        box.append(el("div", { class: "flash info empty-state", "data-testid": "empty-banner" }, [
          "No holdings yet. ", el("a", { href: root.dataset.transactionsUrl, text: "Add your first transaction" }), "."]));
      }
      return data;
    } catch (error) {
      banner("error", "Totals could not be loaded: " + error.message, "totals-error");
      throw error;
    }
  }

  // Value by account: cash (each currency as held), holdings and total in the base currency.
  function renderAccounts(accounts) {
    const body = root.querySelector("[data-testid=accounts] tbody");
    body.replaceChildren();
    for (const a of accounts) {
      const cash = !a.tracks_cash ? [el("span", { class: "muted", text: "not tracked" })]
        : a.cash.length ? a.cash.map((c) => el("div", { text: F.money(c.amount, c.currency) + " " + c.currency }))
        : [money("0")];
      body.append(el("tr", { "data-account": String(a.id) }, [
        el("td", { class: "lead" }, [el("strong", { text: a.name }), a.platform ? " " : "", a.platform ? el("small", { text: a.platform }) : ""]),
        el("td", { class: "num", "data-testid": "account-cash" }, cash),
        el("td", { class: "num", "data-testid": "account-holdings", text: money(a.holdings_value) }),
        el("td", { class: "num key", "data-testid": "account-total", text: money(a.total_value) }),
      ]));
    }
    root.querySelector("[data-testid=accounts]").closest("section").hidden = !accounts.length;
  }

  // History a new trade needs is fetched by the workers: say so, follow it, and redraw when it landed.
  function showHistory(history) {
    const bar = document.getElementById("history-progress");
    if (!history || !history.pending.length) {
      if (!bar.hidden && state.historyWatched) {
        bar.hidden = true;
        state.historyWatched = false;
        loadHoldings();
        loadChart(state.range);
      }
      bar.hidden = true;
      return;
    }
    const names = history.pending.slice(0, 4).join(", ") + (history.pending.length > 4 ? "…" : "");
    const percent = history.total ? (100 * history.done) / history.total : 0;
    showProgress(bar, percent, `Fetching price history for ${F.plural(history.pending.length, "instrument")} (${names}): ${history.done} of ${history.total} done`);
    if (!state.historyWatched) {
      state.historyWatched = true;
      (async function follow() {
        while (state.historyWatched) {
          await sleep(POLL_MS * 2);
          try { await loadInitial(); } catch (error) { return; }
        }
      })();
    }
  }

  // --- holdings ------------------------------------------------------------------------------

  function sortedHoldings() {
    const { key, desc } = state.sort;
    const value = (h) => (key === "symbol" ? h.symbol : h[key] == null ? -Infinity : Number(h[key]));
    // Ties by symbol then instrument id, as the allocation orders its rows: two KO worth the same always
    // come in one order, whatever order the answer listed them in.
    const tie = (a, b) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : a.instrument_id - b.instrument_id);
    return state.holdings.slice().sort((a, b) => {
      const x = value(a), y = value(b);
      const order = x < y ? -1 : x > y ? 1 : 0;
      return (desc ? -order : order) || tie(a, b);
    });
  }

  function renderHoldings() {
    const body = root.querySelector("[data-testid=holdings] tbody");
    body.replaceChildren();
    if (!state.holdings.length) {
      body.append(el("tr", {}, [el("td", { colspan: "8", text: "No open positions." })]));
      return;
    }
    const label = F.instrumentLabels(state.holdings);
    for (const h of sortedHoldings()) {
      // A currency's cash has no instrument page: it is worth 1 in its currency.
      const isCash = h.asset_class === "cash" && h.symbol.startsWith("CASH ");
      // The symbol alone opens your manual KO, never the shared one beside it: the link names the instrument.
      const href = `${root.dataset.instrumentUrl.replace("SYMBOL", encodeURIComponent(h.symbol))}?instrument=${h.instrument_id}`;
      const link = isCash ? el("span", { text: h.name }) : el("a", { href: href, text: label(h) });
      const symbolCell = el("td", { class: "lead" }, [el("strong", {}, [link]), " ", el("small", { text: h.asset_class })]);
      const priceCell = el("td", { class: "num", "data-testid": "holding-price" }, [h.price == null ? el("span", { class: "muted", text: "no price" }) : F.price(h.price, h.currency) + " " + h.currency]);
      if (h.unknown) priceCell.append(" ", el("span", { class: "badge stale", title: "Its provider does not know this symbol", text: "unknown symbol" }));
      else if (h.stale && h.price != null) priceCell.append(" ", el("span", { class: "badge stale", title: "Older than the last market close", text: "stale " + h.price_as_of }));
      const gain = el("td", { class: "num key", text: signed(h.unrealized_gain) }); tone(gain, h.unrealized_gain);
      const gainPct = el("td", { class: "num key", text: pct(h.unrealized_gain_percent) }); tone(gainPct, h.unrealized_gain_percent);
      body.append(el("tr", { "data-symbol": h.symbol, "data-instrument-id": String(h.instrument_id) }, [
        symbolCell,
        el("td", { class: "num", "data-testid": "holding-quantity", text: F.quantity(h.quantity) }),
        el("td", { class: "num", text: F.price(h.average_cost, currency) }),
        priceCell,
        el("td", { class: "num key", "data-testid": "holding-value", text: money(h.market_value) }),
        gain, gainPct,
        el("td", { class: "num", text: F.percent(h.weight, { fraction: true, digits: 1 }) }),
      ]));
    }
  }

  async function loadHoldings() {
    const wrap = document.getElementById("holdings-wrap");
    try {
      state.holdings = (await api(`/api/dashboard-holdings-data/${portfolioId}/`)).body.holdings;
      banner("error", "", "holdings-error");
      renderHoldings();
      wrap.setAttribute("aria-busy", "false");
      wrap.dataset.loaded = "true";
      wrap.dataset.loadedAt = String(performance.now());
    } catch (error) {
      banner("error", "Holdings could not be loaded: " + error.message, "holdings-error");
    }
  }

  root.querySelectorAll("th[data-sort]").forEach((th) => {
    th.addEventListener("click", () => {
      const key = th.dataset.sort;
      state.sort = { key: key, desc: state.sort.key === key ? !state.sort.desc : key !== "symbol" };
      root.querySelectorAll("th[data-sort]").forEach((other) => other.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", state.sort.desc ? "descending" : "ascending");
      renderHoldings();
    });
  });

  // --- chart ---------------------------------------------------------------------------------

  function drawChart(series) {
    const box = document.getElementById("chart");
    state.series = series;
    const xs = series.map((p) => Date.parse(p.date + "T00:00:00Z") / 1000);
    const data = [xs, series.map((p) => Number(p.value)), series.map((p) => Number(p.invested))];
    if (state.plot) { state.plot.destroy(); state.plot = null; }
    if (state.plotObserver) { state.plotObserver.disconnect(); state.plotObserver = null; }
    box.replaceChildren();
    if (!xs.length) { box.append(el("p", { class: "hint empty-chart", text: "No history yet." })); return; }
    const compact = new Intl.NumberFormat(F.locale, { notation: "compact", maximumFractionDigits: 1 });
    state.plot = new uPlot({
      width: box.clientWidth, height: chartHeight(),
      scales: { x: { time: true } },
      series: [
        { label: "Date", value: legendValue(dateOf) },
        { label: "Value", stroke: color("--chart-value"), width: 2, fill: color("--chart-fill"), value: legendValue(money) },
        { label: "Invested", stroke: color("--chart-invested"), width: 1.5, dash: [6, 4], value: legendValue(money) },
      ],
      axes: axes({ values: (u, values) => values.map((v) => compact.format(v)), size: 60 }),
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
    }, data, box);
    state.plotObserver = followWidth(box, state.plot, chartHeight);
    box.dataset.points = String(xs.length);
    box.dataset.range = state.range;
    box.dataset.loadedAt = String(performance.now());
  }

  function drawAllocation(allocation) {
    const bars = (container, rows, label) => {
      container.replaceChildren();
      if (!rows || !rows.length) { container.append(el("p", { class: "hint", text: "Nothing priced yet." })); return; }
      rows.slice(0, 12).forEach((row) => {
        const share = Number(row.weight) * 100;
        const fill = el("span", { class: "bar-fill" });
        fill.style.width = `${share.toFixed(2)}%`;  // a property, not a style attribute: the CSP refuses those
        container.append(el("div", { class: "bar-row" }, [
          el("span", { class: "bar-label", text: label(row) }),
          el("span", { class: "bar-track" }, [fill]),
          el("span", { class: "bar-value", text: F.percent(share, { digits: 1 }) }),
        ]));
      });
    };
    bars(document.getElementById("allocation-class"), allocation && allocation.by_asset_class, (r) => r.asset_class);
    bars(document.getElementById("allocation-holding"), allocation && allocation.by_instrument, F.instrumentLabels((allocation && allocation.by_instrument) || []));
  }

  async function followChartProgress(progressUrl, token) {
    const status = document.getElementById("chart-status");
    const started = Date.now();
    while (Date.now() - started < POLL_LIMIT_MS) {
      if (token !== state.chartToken) return "superseded";
      const progress = (await api(progressUrl)).body;
      if (progress.state === "SUCCESS") return "ready";
      if (progress.state === "FAILURE") return "failed: " + (progress.error || "unknown error");
      showProgress(status, progress.percent, progress.state === "PENDING" ? "Chart queued…" : `Computing chart… ${Math.round(progress.percent)} %`);
      await sleep(POLL_MS);
    }
    return "timeout";
  }

  async function loadChart(range) {
    state.range = range;
    const token = ++state.chartToken;
    const status = document.getElementById("chart-status");
    const note = document.getElementById("chart-note");
    try {
      let answer = await api(`/api/dashboard-chart-data/${portfolioId}/?range=${encodeURIComponent(range)}`);
      if (token !== state.chartToken) return;
      if (answer.status === 202) {
        showProgress(status, 0, "Chart queued…");
        const outcome = await followChartProgress(answer.body.progress_url, token);
        if (outcome === "superseded") return;
        if (outcome !== "ready") { showProgress(status, 100, "The chart could not be made (" + outcome + "). It is retried on the next change."); return; }
        answer = await api(`/api/dashboard-chart-data/${portfolioId}/?range=${encodeURIComponent(range)}`);
        if (token !== state.chartToken || answer.status !== 200) return;
      }
      status.hidden = true;
      drawChart(answer.body.series);
      drawAllocation(answer.body.allocation);
      drawBenchmark(answer.body.benchmark);
      loadPerformance();
      const warnings = (answer.body.warnings || []).map((w) => w.message);
      note.hidden = !warnings.length && !answer.body.outdated;
      note.textContent = (answer.body.outdated ? `Chart from ${Math.round(answer.body.age_seconds)} s ago; updating… ` : "") + warnings.join(" ");
      if (answer.body.outdated) {
        // Served while a newer one is made: redraw when it is ready; say so when it could not be made.
        const outcome = await followChartProgress(answer.body.progress_url, token);
        status.hidden = true;
        if (outcome === "superseded" || token !== state.chartToken) return;
        if (outcome === "ready") loadChart(range);
        else note.textContent = `Chart from ${Math.round(answer.body.age_seconds)} s ago: a newer one could not be made (${outcome}); it is retried on the next change. ` + warnings.join(" ");
      }
    } catch (error) {
      showProgress(status, 100, "The chart could not be loaded: " + error.message);
    }
  }

  root.querySelectorAll("button.range").forEach((button) => {
    button.addEventListener("click", () => {
      root.querySelectorAll("button.range").forEach((b) => b.classList.toggle("active", b === button));
      loadChart(button.dataset.range);
    });
  });
  // Charts are drawn in the theme's colours: redrawn when it changes.
  document.addEventListener("folio:themechange", () => {
    if (state.series) drawChart(state.series);
    if (state.benchmark) drawBenchmark(state.benchmark);
  });

  // --- returns and benchmark ------------------------------------------------------------------

  async function loadPerformance() {
    const range = document.getElementById("performance-range").value;
    const box = document.getElementById("performance-figures");
    // Answers can arrive out of order (a chart reload asks too): only the latest request's answer is shown,
    // so the figures always belong to the range the selector shows.
    const token = ++state.performanceToken;
    try {
      const answer = await api(`/api/portfolios/${portfolioId}/performance/?range=${encodeURIComponent(range)}`);
      if (token !== state.performanceToken) return;
      banner("error", "", "performance-error");
      if (answer.status === 202) return; // computed with the chart: loaded again when the chart is ready
      const data = answer.body;
      box.querySelectorAll("[data-perf]").forEach((node) => {
        const value = data[node.dataset.perf];
        const kind = node.dataset.kind;
        node.textContent = kind === "rate" ? rate(value) : kind === "money" ? money(value) : signed(value);
        if (kind !== "money") tone(node, value);
      });
      box.dataset.loaded = "true";
      box.dataset.range = range;
    } catch (error) {
      banner("error", "Returns could not be loaded: " + error.message, "performance-error");
    }
  }

  function drawBenchmark(benchmark) {
    const box = document.getElementById("benchmark-chart");
    state.benchmark = benchmark;
    if (state.benchmarkPlot) { state.benchmarkPlot.destroy(); state.benchmarkPlot = null; }
    if (state.benchmarkObserver) { state.benchmarkObserver.disconnect(); state.benchmarkObserver = null; }
    box.replaceChildren();
    if (!benchmark || !benchmark.series.length) return;
    const points = benchmark.series;
    const data = [points.map((p) => Date.parse(p.date + "T00:00:00Z") / 1000),
      points.map((p) => (p.portfolio == null ? null : Number(p.portfolio) * 100)),
      points.map((p) => (p.benchmark == null ? null : Number(p.benchmark) * 100))];
    const percent = (v) => F.percent(v, { signed: true });
    state.benchmarkPlot = new uPlot({
      width: box.clientWidth, height: benchmarkHeight(),
      scales: { x: { time: true } },
      series: [{ label: "Date", value: legendValue(dateOf) },
        { label: "Portfolio (TWR)", stroke: color("--chart-value"), width: 2, value: legendValue(percent) },
        { label: benchmark.symbol, stroke: color("--chart-second"), width: 2, value: legendValue(percent) }],
      axes: axes({ size: 50, values: (u, vals) => vals.map((v) => F.number(v, 0) + " %") }),
    }, data, box);
    state.benchmarkObserver = followWidth(box, state.benchmarkPlot, benchmarkHeight);
    box.dataset.symbol = benchmark.symbol;
    const last = points[points.length - 1];
    document.getElementById("benchmark-note").textContent =
      `Since the start of the ${state.range} range: portfolio ${rate(last.portfolio)}, ${benchmark.symbol} ${rate(last.benchmark)} (time-weighted).`;
  }

  document.getElementById("performance-range").addEventListener("change", loadPerformance);
  document.getElementById("benchmark-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const symbol = form.benchmark.value.trim();
    try {
      await api(form.dataset.url, { method: "PATCH", body: { benchmark: symbol || null } });
      banner("error", "", "benchmark-error");
      document.getElementById("benchmark-note").textContent = symbol ? `Comparing with ${symbol.toUpperCase()}: fetching its history and redrawing…` : "";
      await loadChart(state.range);
    } catch (error) {
      banner("error", "The benchmark could not be saved: " + error.message, "benchmark-error");
    }
  });

  // --- refresh -------------------------------------------------------------------------------

  const refreshButton = document.getElementById("refresh-button");
  refreshButton.addEventListener("click", async () => {
    const bar = document.getElementById("refresh-progress");
    refreshButton.disabled = true;
    banner("error", "", "refresh-error");
    try {
      const started = (await api(root.dataset.refreshUrl, { method: "POST" })).body;
      showProgress(bar, 0, "Refreshing prices…");
      const since = Date.now();
      let job = null;
      while (Date.now() - since < POLL_LIMIT_MS) {
        job = (await api(started.progress_url)).body;
        showProgress(bar, job.percent, `Refreshing prices: ${job.done + job.failed} of ${job.total}` + (job.failed ? ` (${job.failed} failed)` : "") + (job.skipped ? `, ${job.skipped} still fresh` : ""));
        if (job.state === "SUCCESS" || job.state === "FAILURE") break;
        await sleep(POLL_MS);
      }
      bar.dataset.state = job ? job.state : "TIMEOUT";
      showProgress(bar, 100, job && job.state === "SUCCESS"
        ? (job.failed ? "Prices partly refreshed" : "Prices refreshed") + `: ${job.done} updated` + (job.failed ? `, ${job.failed} failed` : "") + (job.skipped ? `, ${job.skipped} were still fresh` : "") + "."
        : "The refresh did not complete" + (job && job.errors.length ? ": " + job.errors[0].error : "."));
      await loadInitial();
      await loadHoldings();
      await loadChart(state.range);
    } catch (error) {
      banner("error", "The refresh could not be started: " + error.message, "refresh-error");
    } finally {
      refreshButton.disabled = false;
    }
  });

  // --- start: totals, then holdings, then the chart ------------------------------------------

  (async function start() {
    try { await loadInitial(); } catch (error) { /* shown in a banner */ }
    await loadHoldings();
    await loadChart(state.range);
  })();
})();
