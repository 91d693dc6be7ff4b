/* An instrument's stored daily closes, drawn with uPlot; range buttons refetch a longer window. */
(function () {
  "use strict";
  const root = document.getElementById("instrument");
  if (!root) return;
  let plot = null;

  async function load(days) {
    const status = document.getElementById("price-status");
    const start = new Date(Date.now() - days * 86400000).toISOString().slice(0, 10);
    let body;
    try {
      const response = await fetch(`${root.dataset.pricesUrl}?start=${start}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error("the server answered " + response.status);
      body = await response.json();
    } catch (error) {
      status.textContent = "Prices could not be loaded: " + error.message;
      return;
    }
    const points = body.prices;
    const last = points[points.length - 1];
    status.textContent = points.length
      ? `Last close ${last.close} ${body.currency} on ${last.date}` + (body.stale ? " (stale: older than the last market close)" : "")
      : "No stored prices in this range yet.";
    const box = document.getElementById("price-chart");
    if (plot) { plot.destroy(); plot = null; }
    box.replaceChildren();
    if (!points.length) return;
    const closes = points.map((p) => Number(p.close));
    const trades = tradeMarkers(points, closes);
    const data = [points.map((p) => Date.parse(p.date + "T00:00:00Z") / 1000), closes, trades.BUY, trades.SELL];
    const marker = (label, color) => ({ label, stroke: color, fill: color, width: 0, paths: () => null,
      points: { show: true, size: 10, stroke: "#fff", fill: color, width: 1.5 } });
    plot = new uPlot({
      width: Math.max(280, box.clientWidth), height: window.innerWidth < 600 ? 220 : 300,
      scales: { x: { time: true } },
      series: [{}, { label: `${body.symbol} (${body.currency})`, stroke: "#2563eb", width: 2 },
        marker("Your buys", "#16a34a"), marker("Your sells", "#dc2626")],
      axes: [{}, { size: 60 }],
    }, data, box);
    box.dataset.buys = String(trades.BUY.filter((v) => v !== null).length);
    box.dataset.sells = String(trades.SELL.filter((v) => v !== null).length);
  }

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

  root.querySelectorAll("button.range").forEach((button) => button.addEventListener("click", () => {
    root.querySelectorAll("button.range").forEach((b) => b.classList.toggle("active", b === button));
    load(Number(button.dataset.days));
  }));
  load(365);
})();
