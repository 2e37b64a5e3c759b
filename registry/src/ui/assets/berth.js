// berth web UI: progressive enhancement only. Every page works without this script.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Copy buttons: shown only when the script runs, since they need it.
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const text = button.dataset.copy;
      try {
        await navigator.clipboard.writeText(text);
      } catch {
        // No clipboard permission (plain HTTP on another host): select the text instead.
        const code = button.parentElement.querySelector("code");
        const range = document.createRange();
        range.selectNodeContents(code);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
      }
      const label = button.textContent;
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = label; }, 1500);
    });
  }

  // Changing the sort order applies it at once.
  const sort = document.getElementById("tag-sort");
  if (sort && sort.form) {
    sort.addEventListener("change", () => sort.form.submit());
  }
});
