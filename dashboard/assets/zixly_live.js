// Live updates in the browser: one EventSource per page on /api/jobs/subscribe (the server pushes each projected
// change; nothing here polls), and opt-in desktop notifications when jobs finish.
window.zixly = (function () {
  const TERMINAL = ["COMPLETED", "FAILED", "DEAD_LETTERED", "CANCELLED"];
  const NOTIFY_KEY = "zixly-notify";
  let stream = null;
  let streamKey = null;
  let notifier = null;
  let notifierOpen = null;
  const OPEN_PATIENCE_MS = 10000;
  const notified = new Set();

  function setStatus(text, state) {
    const element = document.getElementById("live-status");
    if (element) {
      element.textContent = text;
      element.className = "live-status " + state;
    }
  }

  function subscribeUrl(filters) {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(filters || {})) {
      for (const item of [].concat(value)) {
        if (item !== null && item !== undefined && item !== "") query.append(name, item);
      }
    }
    const text = query.toString();
    return "/api/jobs/subscribe" + (text ? "?" + text : "");
  }

  function watch(key, filters, onRow) {
    if (stream && streamKey === key) return;
    stop();
    streamKey = key;
    stream = new EventSource(subscribeUrl(filters));
    setStatus("○ connecting", "live-off");
    stream.onopen = () => setStatus("● live", "live-on");
    stream.onerror = () => setStatus("○ reconnecting", "live-off");
    stream.addEventListener("job", (event) => onRow(JSON.parse(event.data)));
  }

  function stop() {
    if (stream) stream.close();
    stream = null;
    streamKey = null;
    setStatus("live updates on the jobs, job and sweep pages", "live-idle");
  }

  // The same shape as dashboard/pages/jobs.py grid_row, so that pushed rows look like fetched ones.
  function shownTime(value) {
    return value ? new Date(value).toISOString().slice(0, 19).replace("T", " ") : null;
  }

  function gridRow(row) {
    return Object.assign({}, row, {
      link: "[" + row.id.slice(0, 8) + "](/jobs/" + row.id + ")",
      created_at: shownTime(row.created_at),
      started_at: shownTime(row.started_at),
      completed_at: shownTime(row.completed_at),
      updated_at: shownTime(row.updated_at),
    });
  }

  function acceptsNew(config, row) {
    if (!config.live_inserts) return false;
    if (config.statuses.length && !config.statuses.includes(row.status)) return false;
    if (config.job_type && row.job_type !== config.job_type) return false;
    const created = new Date(row.created_at).getTime();
    if (config.created_from && created < new Date(config.created_from).getTime()) return false;
    if (config.created_to && created >= new Date(config.created_to).getTime()) return false;
    return true;
  }

  // dash-ag-grid throws, not answers null, while the grid is not on the page or not initialised yet (a change
  // pushed as the page loads, or just after it was left): that row then shows as the grid fetched it.
  function gridApi(id) {
    try {
      return window.dash_ag_grid ? window.dash_ag_grid.getApi(id) : null;
    } catch (error) {
      return null;
    }
  }

  function onJobsRow(config, row) {
    const api = gridApi("jobs-grid");
    if (!api) return;
    if (api.getRowNode(row.id)) {
      api.applyTransaction({ update: [gridRow(row)] });  // changed cells flash (enableCellChangeFlash)
    } else if (acceptsNew(config, row)) {
      api.applyTransaction({ add: [gridRow(row)], addIndex: 0 });
    }
  }

  // Resolves with the button's text once the stream is open: a job finishing before then would not be announced,
  // so "on" is said only when it is true (the browser tests caught a job finished in that gap).
  function startNotifications() {
    if (notifier) return notifierOpen;
    notifier = new EventSource(subscribeUrl({ status: TERMINAL }));
    const opened = new Promise((resolve) => notifier.addEventListener("open", () => resolve(true), { once: true }));
    const late = new Promise((resolve) => setTimeout(() => resolve(false), OPEN_PATIENCE_MS));
    notifierOpen = Promise.race([opened, late]).then((open) => (open ? "Notifications on ✓" : "Notifications on (connecting)"));
    notifier.addEventListener("job", (event) => {
      const row = JSON.parse(event.data);
      if (notified.has(row.id)) return;  // later changes to a finished job (a notification sent) are not news
      notified.add(row.id);
      new Notification("Job " + row.status.toLowerCase().replace("_", " "), {
        body: row.job_type + " " + row.id.slice(0, 8) + " (" + row.tenant_id + ")",
        tag: row.id,
      });
    });
    return notifierOpen;
  }

  function toggleNotifications(clicks) {
    if (!("Notification" in window)) return "Notifications unavailable";
    const on = localStorage.getItem(NOTIFY_KEY) === "on";
    if (!clicks) {
      if (on && Notification.permission === "granted") return startNotifications();
      return "Notify me when jobs finish";
    }
    if (on) {
      localStorage.removeItem(NOTIFY_KEY);
      if (notifier) notifier.close();
      notifier = null;
      notifierOpen = null;
      return "Notify me when jobs finish";
    }
    // Dash waits for the promise: the button says what the browser answered.
    return Notification.requestPermission().then((permission) => {
      if (permission !== "granted") return "Notifications blocked by the browser";
      localStorage.setItem(NOTIFY_KEY, "on");
      return startNotifications();
    });
  }

  return { watch, stop, onJobsRow, toggleNotifications, subscribeUrl };
})();

window.dash_clientside = Object.assign({}, window.dash_clientside, {
  zixly: {
    watchJobs: function (config) {
      if (!config) return window.dash_clientside.no_update;
      window.zixly.watch("jobs:" + JSON.stringify(config), { tenant_id: config.tenant_id },
        (row) => window.zixly.onJobsRow(config, row));
      return window.dash_clientside.no_update;
    },
    watchJob: function (jobId, storeId) {
      if (!jobId) return window.dash_clientside.no_update;
      window.zixly.watch(storeId + ":" + jobId, { job_id: jobId },
        (row) => window.dash_clientside.set_props(storeId, { data: row }));
      return window.dash_clientside.no_update;
    },
    stopWatching: function () {
      window.zixly.stop();
      return window.dash_clientside.no_update;
    },
  },
});
