/* Donut charts of the dashboard's allocation by sector, country and region (GET /api/portfolios/{id}/allocation/),
   drawn as SVG rings with a legend; "unknown" is its own grey slice. While the workers are still fetching
   instrument profiles the figures are re-read every few seconds. */
(function () {
  "use strict";
  const root = document.getElementById("exposure");
  if (!root) return;
  const SVG = "http://www.w3.org/2000/svg";
  const COLORS = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d",
    "#ea580c", "#4f46e5", "#0d9488", "#a16207"];
  const UNKNOWN_COLOR = "#cbd5e1";
  const MAX_SLICES = 9; // the rest are summed into "other" so the ring stays legible
  const POLL_MS = 2000;
  const MAX_POLLS = 30;

  function grouped(rows) {
    const known = rows.filter((r) => r.name !== "unknown");
    const unknown = rows.filter((r) => r.name === "unknown");
    if (known.length <= MAX_SLICES) return known.concat(unknown);
    const rest = known.slice(MAX_SLICES - 1);
    const other = { name: "other", value: String(rest.reduce((s, r) => s + Number(r.value), 0)),
      weight: String(rest.reduce((s, r) => s + Number(r.weight), 0)) };
    return known.slice(0, MAX_SLICES - 1).concat([other], unknown);
  }

  function ring(rows) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 42 42");
    svg.setAttribute("class", "donut-ring");
    svg.setAttribute("role", "img");
    let offset = 25; // start at 12 o'clock
    rows.forEach((row, index) => {
      const share = Number(row.weight) * 100;
      const circle = document.createElementNS(SVG, "circle");
      circle.setAttribute("cx", "21"); circle.setAttribute("cy", "21"); circle.setAttribute("r", "15.9155");
      circle.setAttribute("fill", "transparent");
      circle.setAttribute("stroke", row.name === "unknown" ? UNKNOWN_COLOR : COLORS[index % COLORS.length]);
      circle.setAttribute("stroke-width", "6");
      circle.setAttribute("stroke-dasharray", `${share} ${100 - share}`);
      circle.setAttribute("stroke-dashoffset", String(offset));
      circle.dataset.name = row.name;
      const title = document.createElementNS(SVG, "title");
      title.textContent = `${row.name}: ${window.FolioFormat.percent(share, { digits: 1 })}`;
      circle.append(title);
      svg.append(circle);
      offset -= share;
    });
    return svg;
  }

  function legend(rows) {
    const list = document.createElement("ul");
    list.className = "donut-legend";
    rows.forEach((row, index) => {
      const item = document.createElement("li");
      item.dataset.name = row.name;
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = row.name === "unknown" ? UNKNOWN_COLOR : COLORS[index % COLORS.length];
      const label = document.createElement("span");
      label.className = "donut-label";
      label.textContent = row.name;
      const value = document.createElement("span");
      value.className = "donut-value";
      value.textContent = window.FolioFormat.percent(row.weight, { digits: 1, fraction: true });
      item.append(swatch, label, value);
      list.append(item);
    });
    return list;
  }

  function draw(body) {
    root.querySelectorAll(".donut").forEach((box) => {
      const rows = grouped(body[box.dataset.dimension] || []);
      if (!rows.length) { box.replaceChildren(document.createTextNode("Nothing valued yet.")); return; }
      box.replaceChildren(ring(rows), legend(rows));
    });
    const pending = body.profiles_pending.length;
    root.dataset.pending = String(pending);
    root.dataset.loaded = "true";
  }

  async function load(polls) {
    try {
      const body = await window.FolioApi.get(root.dataset.url);
      draw(body);
      if (body.profiles_pending.length && polls < MAX_POLLS) setTimeout(() => load(polls + 1), POLL_MS);
    } catch (error) {
      root.querySelectorAll(".donut").forEach((box) => { box.textContent = "Allocation could not be loaded: " + error.message; });
    }
  }
  load(0);
})();
