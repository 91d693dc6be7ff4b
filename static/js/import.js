// A large import runs in a worker: follow its job until it ends, then say what happened.
(function () {
  "use strict";
  const box = document.getElementById("import-job");
  if (!box) return;
  const bar = box.querySelector(".bar");
  const text = box.querySelector(".progress-text");
  const outcome = box.querySelector(".import-outcome");

  function show(percent, message) {
    bar.style.width = Math.max(2, Math.min(100, percent)) + "%";
    text.textContent = message;
  }

  async function follow() {
    for (;;) {
      let job;
      try {
        job = await window.FolioApi.get(box.dataset.progressUrl);
      } catch (error) {
        show(100, "The import's progress cannot be read: " + error.message);
        return;
      }
      if (job.state === "SUCCESS") {
        const result = job.result || {};
        show(100, "Done.");
        box.dataset.state = "SUCCESS";
        outcome.replaceChildren();
        const line = document.createElement("p");
        line.className = "flash success";
        line.textContent = `Imported ${window.FolioFormat.plural(result.created || 0, "transaction")}` + (result.skipped_duplicates ? `; skipped ${result.skipped_duplicates} already present.` : ".");
        const link = document.createElement("a");
        link.href = box.dataset.transactionsUrl;
        link.textContent = " See the transactions.";
        line.append(link);
        outcome.append(line);
        return;
      }
      if (job.state === "FAILURE") {
        show(100, "Nothing was imported.");
        box.dataset.state = "FAILURE";
        const list = document.createElement("ul");
        list.className = "flash error";
        list.setAttribute("role", "alert");
        for (const error of job.errors) {
          const item = document.createElement("li");
          item.textContent = error.error;
          list.append(item);
        }
        outcome.replaceChildren(list);
        return;
      }
      show(job.percent, job.state === "PENDING" ? "Queued…" : `Checking rows: ${job.done} of ${job.total}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  follow();
})();
