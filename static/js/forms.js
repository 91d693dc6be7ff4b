// Behaviour the templates declare with data attributes (no inline handlers: the Content-Security-Policy
// runs scripts from our files only).
//   <form data-confirm="Delete …?">  asks before submitting
//   <select data-autosubmit>          submits its form when changed
//   <form data-cash-types="A,B">      hides the fields marked data-instrument-field while its type
//                                     select names one of those types (a deposit has no symbol)
"use strict";
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-autosubmit]");
  if (select && select.form) select.form.submit();
});

function instrumentFieldsToggle(form) {
  const type = form.querySelector("select[name=type]");
  if (!type) return;
  const cash = form.dataset.cashTypes.split(",").includes(type.value);
  form.querySelectorAll("[data-instrument-field]").forEach((field) => {
    const label = field.closest("label");
    if (label) label.hidden = cash;
  });
}
document.addEventListener("change", (event) => {
  const form = event.target.closest("form[data-cash-types]");
  if (form && event.target.name === "type") instrumentFieldsToggle(form);
});
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-cash-types]").forEach(instrumentFieldsToggle);
});
