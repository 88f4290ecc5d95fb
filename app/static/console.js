// Small helpers only; every page works without JavaScript.
document.addEventListener("DOMContentLoaded", () => {
  // Filter a table's rows by the text typed into an input with data-filter="tableId".
  document.querySelectorAll("input[data-filter]").forEach((input) => {
    const table = document.getElementById(input.dataset.filter);
    if (!table) return;
    input.addEventListener("input", () => {
      const needle = input.value.trim().toLowerCase();
      table.querySelectorAll("tbody tr").forEach((row) => {
        row.hidden = needle !== "" && !row.textContent.toLowerCase().includes(needle);
      });
    });
  });
});

/* issue 18 — operator18 */
// The operator's job form: choosing a kind (or the first dataset) fills that kind's template, written with the
// chosen dataset's column names (the templates are in the page as JSON; the server checks every submission).
// Code the operator has edited is never overwritten without the "Use the template" button.
// Pages showing a queued or running job (an element with data-refresh="N") reload every N seconds while no
// form field has been touched.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("submit-form");
  if (form && form.dataset.templates) {
    const templates = JSON.parse(form.dataset.templates);
    const kind = form.querySelector("#kind");
    const code = form.querySelector("#code");
    const button = form.querySelector("#use-template");
    const chosen = () => {
      const box = form.querySelector("input[name=datasets]:checked") || form.querySelector("input[name=datasets]");
      return box ? box.value : "";
    };
    const current = () => (templates[kind.value] || {})[chosen()] || "";
    let filled = code.value;
    const fill = (force) => {
      const next = current();
      if (!next) return;
      if (force || code.value.trim() === "" || code.value === filled) {
        code.value = next;
        filled = next;
      }
    };
    if (button) {
      button.hidden = false;
      button.addEventListener("click", () => fill(true));
    }
    kind.addEventListener("change", () => fill(false));
    form.querySelectorAll("input[name=datasets]").forEach((box) => box.addEventListener("change", () => fill(false)));
  }
  const live = document.querySelector("[data-refresh]");
  if (live) {
    let touched = false;
    document.querySelectorAll("input, textarea, select").forEach((field) => {
      field.addEventListener("input", () => { touched = true; });
    });
    const seconds = Math.max(2, parseInt(live.dataset.refresh || "5", 10));
    // Reloaded without the query: a flash message from the submission is shown once, not on every refresh.
    window.setTimeout(() => { if (!touched) window.location.replace(window.location.pathname); }, seconds * 1000);
  }
});

/* issue 18 — custodian18 */
// A long-running form (desensitization) says it is working and cannot be sent twice while the page waits.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("button[data-busy]").forEach((button) => {
    const form = button.form;
    if (!form) return;
    form.addEventListener("submit", () => {
      button.textContent = button.dataset.busy;
      button.setAttribute("aria-busy", "true");
      setTimeout(() => { button.disabled = true; }, 0);
    });
  });
});
