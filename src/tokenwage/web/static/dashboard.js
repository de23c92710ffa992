// tokenwage dashboard: draws the charts from the JSON each page embeds, and keeps the
// headline numbers live by polling a small JSON endpoint. No inline handlers, no globals
// besides Chart (served from /static/vendor/, installed by `make assets`).
(function () {
  "use strict";

  var PALETTE = ["#3b5bdb", "#0ca678", "#f08c00", "#ae3ec9", "#e8590c", "#1098ad", "#d6336c", "#5c940d"];
  var usd = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
  var charts = {};

  function readSpec(canvas) {
    var source = document.getElementById(canvas.dataset.chart + "-data");
    return source ? JSON.parse(source.textContent) : null;
  }

  function toNumbers(values) {
    return values.map(function (v) { return v === null ? null : Number(v); });
  }

  function dataset(ds, i, type) {
    var color = ds.color || PALETTE[i % PALETTE.length];
    var out = {
      label: ds.label,
      data: toNumbers(ds.data),
      borderColor: color,
      backgroundColor: type === "line" && !ds.fill ? color : color + (type === "line" ? "22" : "cc"),
      borderWidth: type === "line" ? 2 : 0,
      pointRadius: 0,
      pointHitRadius: 8,
      tension: 0.2,
      fill: !!ds.fill,
      spanGaps: false
    };
    if (ds.dashed) { out.borderDash = [6, 4]; }
    if (ds.type) { out.type = ds.type; }
    if (ds.stack) { out.stack = ds.stack; }
    return out;
  }

  function draw(canvas) {
    var spec = readSpec(canvas);
    if (!spec || typeof Chart === "undefined") { return; }
    var stacked = !!spec.stacked;
    var horizontal = !!spec.horizontal;
    var valueAxis = horizontal ? "x" : "y";
    var scales = { x: { stacked: stacked, grid: { display: horizontal } }, y: { stacked: stacked, grid: { display: !horizontal } } };
    scales[valueAxis].beginAtZero = true;
    scales[valueAxis].ticks = { callback: function (v) { return usd.format(v).replace(/\.00$/, ""); } };
    charts[canvas.dataset.chart] = new Chart(canvas, {
      type: spec.type,
      data: { labels: spec.labels, datasets: spec.datasets.map(function (ds, i) { return dataset(ds, i, spec.type); }) },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        indexAxis: horizontal ? "y" : "x",
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { display: spec.datasets.length > 1, position: "bottom", labels: { boxWidth: 12 } },
          tooltip: {
            callbacks: {
              label: function (ctx) {
                var v = horizontal ? ctx.parsed.x : ctx.parsed.y;
                return v === null ? null : ctx.dataset.label + ": " + usd.format(v);
              }
            }
          }
        },
        scales: scales
      }
    });
  }

  function drawAll() {
    var canvases = document.querySelectorAll("canvas[data-chart]");
    for (var i = 0; i < canvases.length; i++) { draw(canvases[i]); }
    if (canvases.length && typeof Chart === "undefined") {
      var notes = document.querySelectorAll("[data-chart-missing]");
      for (var j = 0; j < notes.length; j++) { notes[j].hidden = false; }
    }
  }

  // -- live numbers ---------------------------------------------------------------------
  function applyLive(root, data) {
    var fields = data.fields || {};
    Object.keys(fields).forEach(function (name) {
      var nodes = root.querySelectorAll('[data-live-field="' + name + '"]');
      for (var i = 0; i < nodes.length; i++) {
        if (nodes[i].textContent !== fields[name]) {
          nodes[i].textContent = fields[name];
          nodes[i].classList.add("live-changed");
        }
      }
    });
    var today = data.today;
    if (today && charts[today.chart]) {
      var chart = charts[today.chart];
      var at = chart.data.labels.indexOf(today.label);
      if (at >= 0) {
        chart.data.datasets[0].data[at] = Number(today.value);
        chart.update("none");
      }
    }
    var stamp = document.querySelector("[data-live-stamp]");
    if (stamp) { stamp.textContent = "updated " + new Date().toLocaleTimeString(); }
  }

  function startLive(root) {
    var url = root.dataset.liveUrl;
    var every = Number(root.dataset.liveSeconds || "5") * 1000;
    function poll() {
      if (document.hidden) { return; }
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data) { applyLive(root, data); } })
        .catch(function () { /* the next poll tries again */ });
    }
    window.setInterval(poll, every);
    document.addEventListener("visibilitychange", poll);
  }

  // -- small conveniences ---------------------------------------------------------------
  function wireCopy() {
    var buttons = document.querySelectorAll("[data-copy]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].addEventListener("click", function (ev) {
        var target = document.getElementById(ev.currentTarget.dataset.copy);
        if (target && navigator.clipboard) {
          navigator.clipboard.writeText(target.textContent.trim());
          ev.currentTarget.textContent = "Copied";
        }
      });
    }
  }

  function wireAutoSubmit() {
    var selects = document.querySelectorAll("select[data-autosubmit]");
    for (var i = 0; i < selects.length; i++) {
      selects[i].addEventListener("change", function (ev) { ev.currentTarget.form.submit(); });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawAll();
    wireCopy();
    wireAutoSubmit();
    var live = document.querySelectorAll("[data-live-url]");
    for (var i = 0; i < live.length; i++) { startLive(live[i]); }
  });
})();
