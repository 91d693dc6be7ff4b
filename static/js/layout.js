/* Tables that become cards on a phone (class "cards", see folio.css): each cell shows its column's name,
 * taken from the table head, for rows written by the server and rows the page's scripts add later. */
(function () {
  "use strict";
  function label(table) {
    const names = Array.from(table.querySelectorAll("thead th")).map((th) => th.textContent.trim());
    table.querySelectorAll("tbody tr").forEach((row) => {
      Array.from(row.children).forEach((cell, index) => {
        if (!cell.hasAttribute("data-label") && names[index] && !cell.hasAttribute("colspan")) cell.dataset.label = names[index];
      });
    });
  }
  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("table.cards").forEach((table) => {
      label(table);
      new MutationObserver(() => label(table)).observe(table.querySelector("tbody"), { childList: true });
    });
  });
})();
