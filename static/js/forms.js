// Behaviour the templates declare with data attributes (no inline handlers: the Content-Security-Policy
// runs scripts from our files only).
//   <form data-confirm="Delete …?">  asks before submitting
//   <select data-autosubmit>          submits its form when changed
"use strict";
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-autosubmit]");
  if (select && select.form) select.form.submit();
});
