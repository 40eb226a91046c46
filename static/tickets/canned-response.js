/* The ticket page's canned-response picker: choosing a response puts its text into the message (appended when the
   message already has text). Without this script the "Insert canned response" button does the same on the server. */
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var source = document.getElementById("canned-bodies");
  var picker = document.getElementById("id_canned");
  var message = document.getElementById("id_body");
  if (!source || !picker || !message) {
    return;
  }
  var bodies = JSON.parse(source.textContent);
  var insert = document.getElementById("canned-insert");
  if (insert) {
    insert.hidden = true;
  }
  picker.addEventListener("change", function () {
    var text = bodies[picker.value];
    if (!text) {
      return;
    }
    var current = message.value.replace(/\s+$/, "");
    message.value = current ? current + "\n\n" + text : text;
    message.focus();
  });
});
