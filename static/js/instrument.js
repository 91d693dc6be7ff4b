/* An instrument's stored daily closes, drawn with uPlot; range buttons refetch a longer window. */
(function () {
  "use strict";
  const root = document.getElementById("instrument");
  if (!root) return;
  const F = window.FolioFormat;
  const color = (name) => window.FolioTheme.color(name);
  const height = () => (window.innerWidth < 600 ? 220 : 300);
  let plot = null;
  let observer = null;
  let shown = null;

  function draw(body) {
    shown = body;
    const box = document.getElementById("price-chart");
    if (plot) { plot.destroy(); plot = null; }
    if (observer) { observer.disconnect(); observer = null; }
    box.replaceChildren();
    const points = body.prices;
    if (!points.length) return;
    const closes = points.map((p) => Number(p.close));
    const trades = tradeMarkers(points, closes);
    const data = [points.map((p) => Date.parse(p.date + "T00:00:00Z") / 1000), closes, trades.BUY, trades.SELL];
    const marker = (label, fill) => ({ label, stroke: fill, fill, width: 0, paths: () => null,
      value: latestMarker, points: { show: true, size: 10, stroke: color("--chart-axis"), fill, width: 1.5 } });
    // The legend shows the point under the cursor, or the latest close (not "--").
    const latest = (format) => (u, v, i) => {
      if (v == null && u.cursor.idx == null) v = u.data[i][u.data[i].length - 1];
      return v == null ? "—" : format(v);
    };
    const axis = { stroke: color("--chart-axis"), grid: { stroke: color("--chart-grid") }, ticks: { stroke: color("--chart-grid") } };
    plot = new uPlot({
      width: box.clientWidth, height: height(),
      scales: { x: { time: true } },
      series: [{ label: "Date", value: latest((s) => new Date(s * 1000).toISOString().slice(0, 10)) },
        { label: `${body.symbol} (${body.currency})`, stroke: color("--chart-value"), width: 2, value: latest((v) => F.price(v, body.currency)) },
        marker("Your buys", "#16a34a"), marker("Your sells", "#dc2626")],
      axes: [axis, Object.assign({}, axis, { size: 60, values: (u, vals) => vals.map((v) => F.number(v, 2)) })],
    }, data, box);
    box.dataset.buys = String(trades.BUY.filter((v) => v !== null).length);
    box.dataset.sells = String(trades.SELL.filter((v) => v !== null).length);
    observer = new ResizeObserver(() => { if (box.clientWidth) plot.setSize({ width: box.clientWidth, height: height() }); });
    observer.observe(box);
  }

  // A marker's legend shows the trade's close under the cursor, or nothing (not "--").
  function latestMarker(u, v) { return v == null ? "" : F.price(v, shown.currency); }

  // The user's buys and sells (the transactions table's rows), placed on the close of their date (or the
  // last close before it): markers aligned with the line whatever currency a trade was in.
  function tradeMarkers(points, closes) {
    const markers = { BUY: points.map(() => null), SELL: points.map(() => null) };
    document.querySelectorAll("#instrument-trades tr[data-date]").forEach((row) => {
      const kind = row.dataset.type;
      if (!(kind in markers)) return;
      let index = -1;
      for (let i = 0; i < points.length && points[i].date <= row.dataset.date; i++) index = i;
      if (index >= 0) markers[kind][index] = closes[index]; // before the range shown: no marker
    });
    return markers;
  }

  async function load(days) {
    const status = document.getElementById("price-status");
    const start = new Date(Date.now() - days * 86400000).toISOString().slice(0, 10);
    let body;
    try {
      // the URL names the instrument already (?instrument=<id>: a symbol can name two)
      body = await window.FolioApi.get(`${root.dataset.pricesUrl}&start=${start}`);
    } catch (error) {
      status.textContent = "Prices could not be loaded: " + error.message;
      return;
    }
    const points = body.prices;
    const last = points[points.length - 1];
    status.textContent = points.length
      ? `Last close ${F.price(last.close, body.currency)} ${body.currency} on ${last.date}` + (body.stale ? " (stale: older than the last market close)" : "")
      : "No stored prices in this range yet.";
    status.dataset.loaded = "true";
    draw(body);
  }

  document.addEventListener("folio:themechange", () => { if (shown) draw(shown); });
  root.querySelectorAll("button.range").forEach((button) => button.addEventListener("click", () => {
    root.querySelectorAll("button.range").forEach((b) => b.classList.toggle("active", b === button));
    load(Number(button.dataset.days));
  }));
  load(365);
})();
