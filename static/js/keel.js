/* Portal behaviour that needs script, kept out of the pages so the Content-Security-Policy can forbid inline script.
   A form with data-confirm="question" asks before it submits; without script it submits at once. */
"use strict";
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form instanceof HTMLFormElement ? form.getAttribute("data-confirm") : null;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
