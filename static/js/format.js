/* One formatting rule for every figure on every page (Intl.NumberFormat in the page's language):
 *  - money to its currency's minor unit (2 for USD and EUR, 0 for JPY), thousands grouped;
 *  - prices to the usual precision of a quote (as Yahoo's priceHint): the minor unit, at least 2 decimals,
 *    and more where the price is small enough to need them (4 under 1, 6 under 0.01, 8 under 0.0001);
 *  - quantities as they are, without trailing zeros (up to 8 decimals);
 *  - percentages with 2 decimals and " %".
 * Pages use it from their scripts (window.FolioFormat); figures the server renders carry their raw value
 * and `data-format="money|price|quantity|percent"` (and `data-currency`), and are formatted here on load.
 * Loaded in <head> without defer, so the page scripts at the end of <body> find it. */
(function () {
  "use strict";
  const locale = document.documentElement.lang || undefined;
  const cache = new Map();
  const EMPTY = "—";

  function formatter(minDigits, maxDigits, signed) {
    const key = `${minDigits}:${maxDigits}:${signed ? 1 : 0}`;
    if (!cache.has(key)) {
      cache.set(key, new Intl.NumberFormat(locale, {
        minimumFractionDigits: minDigits, maximumFractionDigits: maxDigits, useGrouping: true,
        signDisplay: signed ? "exceptZero" : "auto",
      }));
    }
    return cache.get(key);
  }

  function numeric(value) {
    if (value == null || value === "") return null;
    const number = Number(value);
    return Number.isFinite(number) ? number : null;
  }

  // Decimal places of a currency's minor unit (ISO 4217, as Intl knows it); 2 when it is unknown.
  function minorDigits(currency) {
    if (!currency) return 2;
    try {
      return new Intl.NumberFormat("en", { style: "currency", currency: currency }).resolvedOptions().maximumFractionDigits;
    } catch (error) {
      return 2;
    }
  }

  function priceDigits(number, currency) {
    const size = Math.abs(number);
    const base = Math.max(2, minorDigits(currency));
    if (size === 0 || size >= 1) return base;
    if (size >= 0.01) return Math.max(base, 4);
    if (size >= 0.0001) return Math.max(base, 6);
    return Math.max(base, 8);
  }

  const F = {
    locale: locale,
    minorDigits: minorDigits,
    money(value, currency, options) {
      const number = numeric(value);
      if (number == null) return EMPTY;
      const digits = minorDigits(currency);
      return formatter(digits, digits, options && options.signed).format(number);
    },
    price(value, currency) {
      const number = numeric(value);
      if (number == null) return EMPTY;
      const digits = priceDigits(number, currency);
      return formatter(digits, digits, false).format(number);
    },
    quantity(value) {
      const number = numeric(value);
      return number == null ? EMPTY : formatter(0, 8, false).format(number);
    },
    // `value` in percent (12.5 → "12.50 %"); { fraction: true } when it is a fraction (0.125 → "12.50 %").
    percent(value, options) {
      const number = numeric(value);
      if (number == null) return EMPTY;
      const opts = options || {};
      const digits = opts.digits == null ? 2 : opts.digits;
      return formatter(digits, digits, opts.signed).format(opts.fraction ? number * 100 : number) + " %";
    },
    number(value, digits) {
      const number = numeric(value);
      return number == null ? EMPTY : formatter(0, digits == null ? 2 : digits, false).format(number);
    },
    // "1 instrument", "2 instruments" (pass the plural where adding s is wrong), the count grouped.
    plural(count, singular, pluralForm) {
      return `${F.number(count, 0)} ${count === 1 ? singular : pluralForm || singular + "s"}`;
    },
    // A symbol can name two instruments side by side (your manual KO beside the shared KO): rows (with symbol,
    // provider, name, instrument_id) -> row -> its label, adding what tells such twins apart: the provider
    // ("KO · manual", "KO · yahoo"), else the name, else the instrument id. Rows are grouped by symbol once,
    // so labelling 500 holdings is not 500 passes over all of them. Dashboard and watchlist share it.
    instrumentLabels(rows) {
      const bySymbol = new Map();
      for (const r of rows) {
        if (!bySymbol.has(r.symbol)) bySymbol.set(r.symbol, []);
        bySymbol.get(r.symbol).push(r);
      }
      return (row) => {
        const twins = bySymbol.get(row.symbol) || [row];
        if (twins.length < 2) return row.symbol;
        const own = (key) => row[key] && row[key] !== row.symbol && twins.filter((other) => other[key] === row[key]).length === 1;
        return `${row.symbol} · ${own("provider") ? row.provider : own("name") ? row.name : "#" + row.instrument_id}`;
      };
    },
    // Server-rendered figures: raw value in the text, kind in data-format.
    apply(root) {
      (root || document).querySelectorAll("[data-format]").forEach((node) => {
        const raw = node.dataset.raw == null ? node.textContent.trim() : node.dataset.raw;
        node.dataset.raw = raw;
        const kind = node.dataset.format;
        const currency = node.dataset.currency;
        node.textContent = kind === "money" ? F.money(raw, currency) : kind === "price" ? F.price(raw, currency)
          : kind === "percent" ? F.percent(raw) : F.quantity(raw);
      });
    },
  };
  window.FolioFormat = F;
  document.addEventListener("DOMContentLoaded", () => F.apply(document));
})();
