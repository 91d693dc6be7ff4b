/* /monitoring: polls the staff monitoring API every few seconds and redraws tables and charts. */
(function () {
  "use strict";
  const root = document.getElementById("monitoring");
  if (!root) return;
  const REFRESH_MS = 5000;
  const charts = {};

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => { if (k === "text") node.textContent = v; else if (k === "class") node.className = v; else node.setAttribute(k, v); });
    (children || []).forEach((c) => node.append(c));
    return node;
  }
  const F = window.FolioFormat;
  const ms = (v) => (v == null ? "—" : F.number(v, 1) + " ms");
  const pct = (v) => F.percent(v, { fraction: true, digits: 1 });
  const when = (ts) => (ts ? new Date(ts * 1000).toISOString().replace("T", " ").slice(0, 19) : "—");
  const get = window.FolioApi.get;

  function fill(testid, rows) {
    const body = root.querySelector(`[data-testid=${testid}] tbody`);
    body.replaceChildren(...(rows.length ? rows : [el("tr", {}, [el("td", { colspan: "12", class: "muted", text: "Nothing yet." })])]));
  }
  // Figures (numbers, and formatted ones such as "2.5 ms" or "3 (1.0 %)") are right-aligned like their heads.
  const figure = (c) => typeof c === "number" || /^[-+]?[\d.,]+( |$)/.test(String(c));
  function row(cells, attrs) { return el("tr", attrs || {}, cells.map((c) => (c instanceof Node ? el("td", {}, [c]) : el("td", { class: figure(c) ? "num" : "", text: c == null ? "—" : typeof c === "number" ? F.number(c, 2) : String(c) })))); }

  const lastDrawn = {};
  function lineChart(id, xs, series) {
    const box = document.getElementById(id);
    lastDrawn[id] = [xs, series];
    if (!xs.length) {
      // Nothing measured yet: say so, rather than an empty axis starting in 1970.
      if (charts[id]) { charts[id].chart.destroy(); charts[id].observer.disconnect(); delete charts[id]; }
      if (!box.querySelector(".empty-chart")) box.replaceChildren(el("p", { class: "hint empty-chart", "data-testid": "empty-chart", text: box.dataset.empty }));
      return;
    }
    const data = [xs, ...series.map((s) => s.values)];
    if (charts[id]) { charts[id].chart.setData(data); return; }
    const axis = { stroke: window.FolioTheme.color("--chart-axis"), grid: { stroke: window.FolioTheme.color("--chart-grid") }, ticks: { stroke: window.FolioTheme.color("--chart-grid") } };
    // A lone point would stretch the time axis over years: give it an hour either side.
    const range = (u, min, max) => (min === max ? [min - 3600, max + 3600] : [min, max]);
    const opts = { width: box.clientWidth, height: 180, scales: { x: { time: true, range: range } },
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: window.FolioTheme.color(s.color), width: 2, points: { show: s.points || false } }))],
      axes: [axis, Object.assign({}, axis, { size: 50 })], legend: { live: false } };
    box.replaceChildren();
    const chart = new uPlot(opts, data, box);
    const observer = new ResizeObserver(() => { if (box.clientWidth) chart.setSize({ width: box.clientWidth, height: 180 }); });
    observer.observe(box);
    charts[id] = { chart: chart, observer: observer };
  }
  // The theme's colours: drawn again when it changes.
  document.addEventListener("folio:themechange", () => {
    Object.keys(charts).forEach((id) => { charts[id].chart.destroy(); charts[id].observer.disconnect(); delete charts[id]; });
    Object.entries(lastDrawn).forEach(([id, [xs, series]]) => lineChart(id, xs, series));
  });

  async function flush(namespace) {
    try {
      await window.FolioApi.request("/api/monitoring/cache/flush/", { method: "POST", body: { namespace } });
    } finally {
      refresh();
    }
  }

  async function refresh() {
    const error = document.getElementById("monitoring-error");
    const filters = new URLSearchParams(new FormData(root.querySelector(".event-filters")));
    try {
      const [cache, providers, jobs, endpoints, events] = await Promise.all([
        get("/api/monitoring/cache-stats/"), get("/api/monitoring/providers/"), get("/api/monitoring/jobs/"),
        get("/api/monitoring/endpoints/"), get("/api/monitoring/events/?" + filters.toString())]);
      error.hidden = true;

      fill("cache-table", Object.entries(cache.namespaces).map(([name, s]) => {
        const button = el("button", { class: "link danger", type: "button", text: "Flush" });
        button.addEventListener("click", () => flush(name));
        return row([name, s.hits, s.misses, pct(s.hit_ratio), s.ttl_seconds == null ? "—" : s.ttl_seconds + " s", button], { "data-namespace": name });
      }));
      const redis = cache.redis;
      root.querySelector("[data-testid=redis-info]").textContent =
        `Redis ${redis.version}: ${redis.used_memory_human} used, ${redis.keys} keys, ${redis.evicted_keys} evicted, ${redis.connected_clients} clients.`;
      const xs = cache.history.map((m) => m.minute);
      const ratio = cache.history.map((m) => {
        let hits = 0, misses = 0;
        Object.entries(m).forEach(([k, v]) => { if (k.endsWith(":hits")) hits += v; if (k.endsWith(":misses")) misses += v; });
        return hits + misses ? hits / (hits + misses) : null;
      });
      lineChart("cache-chart", xs, [{ label: "Hit ratio", color: "--chart-value", values: ratio, points: true }]);

      fill("providers-table", providers.providers.map((p) => row([p.name, p.requests ?? "—", ms(p.p50_ms), ms(p.p95_ms), ms(p.p99_ms),
        p.error_rate == null ? "—" : `${p.errors} (${pct(p.error_rate)})`, p.rate_limited_rate == null ? "—" : `${p.rate_limited} (${pct(p.rate_limited_rate)})`,
        p.circuit ?? "—", p.quota_left_today == null ? "—" : `${F.number(p.quota_left_today, 0)} / ${F.number(p.daily_quota, 0)}`,
        p.instruments.fresh, p.instruments.stale, p.instruments.unpriced], { "data-provider": p.name })));

      const q = jobs.queues;
      root.querySelector("[data-testid=queues]").textContent =
        `Queues: prices ${q.prices}, history ${q.history}, charts ${q.charts}, default ${q.default}. Workers: ${jobs.workers.length ? jobs.workers.join(", ") : "none answering"}` +
        (jobs.heartbeat_age_seconds == null ? "; no heartbeat yet." : `; last heartbeat ${jobs.heartbeat_age_seconds} s ago.`);
      fill("jobs-table", jobs.jobs.map((j) => row([when(j.created_at), j.state, j.total, j.done, j.failed, j.skipped,
        j.duration_seconds == null ? "—" : F.number(j.duration_seconds, 2) + " s", j.errors.length ? j.errors[0].error : ""], { "data-job": j.job_id })));
      const finished = jobs.jobs.filter((j) => j.finished_at).reverse();
      lineChart("jobs-chart", finished.map((j) => j.created_at), [{ label: "Duration (s)", color: "--chart-third", values: finished.map((j) => j.duration_seconds), points: true }]);

      fill("endpoints-table", endpoints.endpoints.map((e) => row([e.endpoint, e.count, ms(e.p50_ms), ms(e.p95_ms), ms(e.p99_ms), ms(e.mean_ms), e.counters.s5xx || 0])));
      fill("events-table", events.results.map((e) => row([e.created_at.replace("T", " ").slice(0, 19), e.level, e.kind, e.message], { class: "event-" + e.level })));
      root.querySelector("[data-testid=updated]").textContent = "Updated " + new Date().toLocaleTimeString() + " · every " + REFRESH_MS / 1000 + " s";
      root.dataset.loaded = "true";
    } catch (e) {
      error.hidden = false;
      error.textContent = "Monitoring data could not be loaded: " + e.message;
    }
  }

  root.querySelectorAll(".event-filters select").forEach((s) => s.addEventListener("change", refresh));
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
