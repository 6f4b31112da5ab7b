// Prophasis web UI: the little JavaScript the server-rendered pages use. Everything works
// without it except charts and live updates: the navigation toggle, list filters, local
// times, live health badges with "updated N s ago", uPlot charts, and the dashboard panel
// pickers. No build step; plain ES2017.
(function () {
  "use strict";

  var csrf = document.querySelector('meta[name="csrf-token"]');
  // Headers for fetch() calls that change something (the server refuses them otherwise).
  window.csrfHeaders = function () {
    return csrf ? { "X-CSRF-Token": csrf.content } : {};
  };

  // Navigation toggle on narrow screens.
  var toggle = document.querySelector(".nav-toggle");
  if (toggle) {
    toggle.addEventListener("click", function () {
      var nav = document.getElementById("nav");
      var open = nav.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  // Client-side filters for long lists. Delegated, so search fields added later (a
  // redundancy group added by rows.js) filter too.
  document.addEventListener("input", function (e) {
    var input = e.target;
    if (!input.matches || !input.matches("input[data-filter]")) return;
    var table = document.querySelector(input.dataset.filter);
    if (!table) return;
    var q = input.value.trim().toLowerCase();
    table.querySelectorAll("tbody tr").forEach(function (tr) {
      tr.hidden = q !== "" && tr.textContent.toLowerCase().indexOf(q) < 0;
    });
  });

  function ago(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    if (s < 86400) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86400) + " d ago";
  }

  // Times in the reader's zone.
  document.querySelectorAll("time[data-time]").forEach(function (t) {
    var ms = Number(t.dataset.time);
    t.setAttribute("datetime", new Date(ms).toISOString());
    t.title = new Date(ms).toLocaleString();
    if (!t.dataset.ago) t.textContent = new Date(ms).toLocaleString();
  });

  // --- Live health -------------------------------------------------------------------
  var LABELS = { ok: "OK", unknown: "Unknown", degraded: "Degraded", minor: "Minor",
                 major: "Major", critical: "Critical", no_data: "No data" };
  var liveUrl = document.body.dataset.live;
  var fresh = document.getElementById("freshness");
  var sampledAt = null, skew = 0, lastOk = null, failed = false;
  var version = document.body.dataset.version ? Number(document.body.dataset.version) : null;

  function setBadge(el, health) {
    var cls = "h-" + health;
    if (el.classList.contains(cls)) return;
    el.className = el.className.replace(/\bh-[a-z_]+\b/g, "").trim() + " " + cls;
    var label = el.querySelector(".label");
    if (label) label.textContent = LABELS[health] || health;
  }

  function applyLive(data) {
    Object.keys(data.hosts).forEach(function (id) {
      document.querySelectorAll('[data-host-health="' + id + '"]').forEach(function (el) {
        setBadge(el, data.hosts[id]);
      });
    });
    Object.keys(data.services).forEach(function (id) {
      document.querySelectorAll('[data-service-health="' + id + '"]').forEach(function (el) {
        setBadge(el, data.services[id]);
      });
    });
    var unread = document.getElementById("unread");
    if (unread) {
      unread.firstChild.nodeValue = String(data.unread);
      unread.classList.toggle("hidden", !data.unread);
    }
    if (version !== null && data.version !== version) refreshCharts();
    version = data.version;
  }

  // An open host page: each plugin panel's latest line, its classification and its chart
  // follow new results, which arrive without any change of health.
  var panels = document.querySelector(".panels[data-latest-url]");
  var RESULT_TYPES = { connection_error: "connection error", connection_timeout: "connection timeout",
                       authentication_error: "authentication error", request_error: "request error",
                       command_unsuccessful: "command unsuccessful" };

  function applyLatest(data) {
    panels.querySelectorAll("[data-plugin-panel]").forEach(function (panel) {
      var r = data.plugins[panel.dataset.pluginPanel];
      if (!r || String(r.timestamp) === panel.dataset.latestTs) return;
      panel.dataset.latestTs = String(r.timestamp);
      var badge = panel.querySelector("h2 .health");
      if (badge) setBadge(badge, r.classification);
      var line = panel.querySelector(".latest");
      if (line) {
        // Built from text nodes: messages come from plugins and are not trusted markup.
        line.className = "latest";
        line.textContent = "Latest: ";
        if (r.value !== null) {
          var strong = document.createElement("strong");
          strong.textContent = String(r.value);
          line.appendChild(strong);
          line.appendChild(document.createTextNode(" "));
        }
        line.appendChild(document.createTextNode(r.message + " "));
        var when = document.createElement("span");
        when.className = "muted";
        when.textContent = "(" + r.ago + (RESULT_TYPES[r.result_type] ? ", " + RESULT_TYPES[r.result_type] : "") + ")";
        line.appendChild(when);
      }
      var chart = panel.querySelector(".chart[data-chart]");
      if (chart && chart.dataset.range !== "custom" && window.uPlot) redraw(chart);
    });
  }

  function pollLatest() {
    fetch(panels.dataset.latestUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(applyLatest)
      .catch(function () { /* the freshness note already says when the server is away */ });
  }

  function showFreshness() {
    if (!fresh || sampledAt === null) return;
    var age = Date.now() - skew - sampledAt;
    fresh.textContent = (failed ? "Cannot reach the server; data is from " : "Updated ") + ago(age) + (failed ? "." : "");
    fresh.classList.toggle("stale", failed);
  }

  function poll() {
    fetch(liveUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.status === 401) { location.reload(); throw new Error("logged out"); }
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (data) {
        skew = Date.now() - data.now;
        sampledAt = data.sampled_at;
        lastOk = Date.now();
        failed = false;
        applyLive(data);
        showFreshness();
        if (panels) pollLatest();
      })
      .catch(function () { failed = true; showFreshness(); });
  }
  if (liveUrl) {
    poll();
    setInterval(poll, 3000);
    setInterval(showFreshness, 1000);
  }

  // --- Charts (uPlot) ----------------------------------------------------------------
  var BAND = ["", "rgba(110,90,158,.18)", "rgba(179,89,0,.20)", "rgba(196,52,26,.22)", "rgba(160,0,28,.28)"];
  var charts = [];

  function healthBands(u) {
    var d = u.data, worst = u._worst;
    if (!worst) return;
    var ctx = u.ctx, top = u.bbox.top, h = u.bbox.height;
    for (var i = 0; i < worst.length; i++) {
      if (!worst[i]) continue;
      var x0 = u.valToPos(d[0][i], "x", true);
      var x1 = i + 1 < d[0].length ? u.valToPos(d[0][i + 1], "x", true) : x0 + 2;
      ctx.fillStyle = BAND[worst[i]];
      ctx.fillRect(x0, top, Math.max(2, x1 - x0), h);
    }
  }

  function chartUrl(el, width) {
    var q = "?plugin=" + encodeURIComponent(el.dataset.plugin) + "&width=" + width;
    if (el.dataset.range && el.dataset.range !== "custom") q += "&range=" + el.dataset.range;
    else q += "&from=" + el.dataset.from + "&to=" + el.dataset.to;
    return el.dataset.chart + q;
  }

  function draw(el) {
    var width = Math.max(200, Math.floor(el.clientWidth));
    return fetch(chartUrl(el, width), { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (d) {
        if (el._plot) { el._plot.destroy(); el._plot = null; }
        el.innerHTML = "";
        if (!d.t.length) {
          el.innerHTML = '<p class="muted">No data in this range.</p>';
          return;
        }
        // Empty points at both ends make the chart span the whole range asked for.
        if (d.t[0] > d.from) { d.t.unshift(d.from); d.mean.unshift(null); d.max.unshift(null); d.min.unshift(null); d.worst.unshift(0); }
        if (d.t[d.t.length - 1] < d.to) { d.t.push(d.to); d.mean.push(null); d.max.push(null); d.min.push(null); d.worst.push(0); }
        var percent = el.dataset.percent === "1";
        var opts = {
          width: width,
          height: 220,
          series: [
            {},
            { label: "mean", stroke: "#0b5cad", width: 2, value: fmt },
            { label: "max", stroke: "rgba(11,92,173,.35)", value: fmt },
            { label: "min", stroke: "rgba(11,92,173,.35)", value: fmt }
          ],
          bands: [{ series: [2, 3], fill: "rgba(11,92,173,.12)" }],
          scales: percent ? { y: { range: [0, 100] } } : {},
          axes: [{}, { size: 50 }],
          cursor: { drag: { x: true, y: false } },
          hooks: { drawClear: [healthBands] }
        };
        // uPlot draws for the first time in a microtask, so _worst is there in time; a
        // redraw() before that first draw leaves the scales unset and the canvas blank.
        var u = new uPlot(opts, [d.t, d.mean, d.max, d.min], el);
        u._worst = d.worst;
        el._plot = u;
        el.dataset.points = String(d.mean.filter(function (v) { return v !== null; }).length);
        el.dataset.results = String(d.results);
        el.dataset.draws = String(Number(el.dataset.draws || 0) + 1);
        el.setAttribute("aria-label", el.getAttribute("aria-label").replace(/ \(.*\)$/, "") +
          " (" + d.results + " results, " + d.resolution.replace("_", " ") + ")");
      })
      .catch(function (e) {
        el.innerHTML = '<p class="error">The chart could not be loaded (' + e.message + "). It retries with the next update.</p>";
      });
  }

  function fmt(u, v) { return v == null ? "–" : (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2)); }

  // One fetch per chart at a time; a request made meanwhile is remembered and done after.
  function redraw(el) {
    if (el._busy) { el._again = true; return; }
    el._busy = true;
    draw(el).then(function () {
      el._busy = false;
      if (el._again) { el._again = false; redraw(el); }
    });
  }
  function refreshCharts() { charts.forEach(redraw); }

  if (window.uPlot) {
    document.querySelectorAll(".chart[data-chart]").forEach(function (el) { charts.push(el); draw(el); });
    var resizeTimer = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(function () {
        charts.forEach(function (el) {
          if (el._plot) el._plot.setSize({ width: Math.max(200, el.clientWidth), height: 220 });
        });
      }, 200);
    });
    // Live charts: a graph of a moving range follows it every minute.
    setInterval(refreshCharts, 60000);
  }

  // --- Dashboard panel pickers -------------------------------------------------------
  document.querySelectorAll("[data-panel-picker]").forEach(function (box) {
    var area = document.querySelector(box.dataset.panelPicker);
    if (!area) return;
    box.hidden = false;
    function add(line) {
      var v = area.value.replace(/\s+$/, "");
      area.value = (v ? v + "\n" : "") + line;
      area.focus();
    }
    box.querySelectorAll("button[data-add]").forEach(function (b) {
      b.addEventListener("click", function () {
        var sel = document.querySelector(b.dataset.add);
        if (sel && sel.value) add(sel.value);
      });
    });
    box.querySelectorAll("button[data-add-line]").forEach(function (b) {
      b.addEventListener("click", function () { add(b.dataset.addLine); });
    });
  });
})();
