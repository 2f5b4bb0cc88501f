// The console's one script: small conveniences only; every page works without it.
"use strict";
document.addEventListener("submit", (event) => {
  // A slow network must not turn one tap into two submissions.
  const form = event.target;
  if (form.dataset.submitted === "1") { event.preventDefault(); return; }
  form.dataset.submitted = "1";
});
document.addEventListener("change", (event) => {
  // A chooser that shows another view at once (inline handlers are not allowed by the page's CSP).
  const field = event.target;
  if (field.matches && field.matches("select[data-autosubmit]") && field.form) field.form.requestSubmit();
});
