// The activity chart: what it takes from /metrics, its points, and drawing
// them. No I/O here: the page (app.js) polls /metrics and hands over the text.

export const CHART_KEEP_S = 300; // the last five minutes

// The sums the chart needs from Prometheus's text format: every series of
// fless_invocations_total (all functions and outcomes, all API processes),
// and the core's fless_invoke_seconds histogram's sum and count.
export function metricTotals(text) {
  const totals = { calls: 0, seconds: 0, timed: 0, found: false };
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const value = Number(match[3]);
    if (!Number.isFinite(value)) continue;
    if (match[1] === "fless_invocations_total") {
      totals.calls += value;
      totals.found = true;
    } else if (match[1] === "fless_invoke_seconds_sum") totals.seconds += value;
    else if (match[1] === "fless_invoke_seconds_count") totals.timed += value;
  }
  return totals;
}

// The chart with one more point: the calls since the last totals, per second,
// and their mean latency (ms; null when no call ended). A counter that went
// down (the node restarted) starts the series again. Points older than
// CHART_KEEP_S go.
export function withPoint(chart, totals, now) {
  const { last } = chart;
  let points = chart.points;
  if (last !== null && totals.calls >= last.calls && totals.timed >= last.timed && now > last.at) {
    const calls = totals.calls - last.calls;
    const timed = totals.timed - last.timed;
    const latency = timed > 0 ? ((totals.seconds - last.seconds) / timed) * 1000 : null;
    points = [...points, { at: now, calls, rate: calls / (now - last.at), latency }];
  } else if (last !== null) {
    points = [];
  }
  return { last: { at: now, ...totals }, points: points.filter((p) => p.at >= now - CHART_KEEP_S) };
}

// One series as an SVG line with a dot at each point, over the last
// CHART_KEEP_S seconds, from 0 to a little over its highest value, which
// `peak` names. Made with DOM calls: no markup, no style attribute. The SVG
// stretches to its box, so what must keep its shape (text, dots) is not
// drawn in it: the stroke does not scale, and a dot is a zero-length line
// with a round cap.
export function plot(svg, peak, series, now, label) {
  const shape = (tag, attributes) => {
    const node = document.createElementNS(svg.namespaceURI, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
    return node;
  };
  const width = 600;
  const height = 120;
  const top = Math.max(...series.map(([, v]) => v), 0);
  const scale = top > 0 ? top * 1.15 : 1;
  const inset = 5; // room for a dot at either end
  const x = (at) => (inset + ((at - (now - CHART_KEEP_S)) / CHART_KEEP_S) * (width - 2 * inset)).toFixed(1);
  const y = (v) => (height - inset - (v / scale) * (height - 2 * inset)).toFixed(1);
  const shapes = [0.25, 0.5, 0.75].map((f) => shape("line", { x1: 0, x2: width, y1: height * f, y2: height * f, class: "grid" }));
  if (series.length) {
    shapes.push(shape("polyline", { points: series.map(([at, v]) => `${x(at)},${y(v)}`).join(" "), class: "series" }));
    for (const [at, v] of series) {
      shapes.push(shape("line", { x1: x(at), x2: x(at), y1: y(v), y2: y(v), class: "dot" }));
    }
  }
  svg.replaceChildren(...shapes);
  peak.textContent = series.length ? `· peak ${label(top)}` : "· waiting for two polls of /metrics";
}
