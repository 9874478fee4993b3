// The aztags page: plain JavaScript, no library and no build step. It calls the server's own
// /v1 API with same-origin fetch (so HTTP basic auth the browser already sent is sent again)
// and puts every value into the page as text (textContent), never as markup.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const MAX_ADDRESSES = 10000;
  const $ = (id) => document.getElementById(id);
  const state = { cloud: "public", tags: new Map(), tagsLoaded: null, profiles: [] };
  const latest = {}; // the newest request per section: older answers arriving late are dropped

  // -- talking to the API ------------------------------------------------------------------------

  // Absolute URLs from location.origin: a page opened with user:password@ before the host has
  // them in its own URL, and fetch refuses URLs built from it; the browser sends them anyway.
  function apiUrl(path, params) {
    const url = new URL(path, window.location.origin);
    for (const [key, value] of Object.entries(params || {})) {
      if (value !== undefined && value !== null && value !== "") {
        url.searchParams.set(key, String(value));
      }
    }
    return url;
  }

  async function call(path, params, init) {
    let response;
    try {
      response = await fetch(apiUrl(path, params), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        ...init,
      });
    } catch (error) {
      throw new Error("The server did not answer (" + error.message + "); is it running?");
    }
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    if (!response.ok) {
      const detail = body && typeof body.detail === "string" ? body.detail : "";
      throw new Error(detail || "The server answered " + response.status + ".");
    }
    return body;
  }

  function claim(section) {
    latest[section] = (latest[section] || 0) + 1;
    return latest[section];
  }

  function current(section, ticket) {
    return latest[section] === ticket;
  }

  // -- small DOM helpers -------------------------------------------------------------------------

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function showError(id, error) {
    const node = $(id);
    node.textContent = error ? error.message || String(error) : "";
    node.hidden = !error;
  }

  function busy(form, on) {
    form.setAttribute("aria-busy", on ? "true" : "false");
    for (const button of form.querySelectorAll("button")) button.disabled = on;
  }

  function plural(count, noun) {
    return count.toLocaleString("en") + " " + noun + (count === 1 ? "" : "s");
  }

  function snapshotText(snapshot) {
    if (!snapshot) return "";
    return (
      snapshot.cloud + " changeNumber " + snapshot.change_number + " (file of " +
      (snapshot.file_date || "unknown date") + ")"
    );
  }

  function setHash(params) {
    const hash = new URLSearchParams({ cloud: state.cloud, ...params }).toString();
    window.history.replaceState(null, "", "#" + hash);
  }

  // -- the cloud, tag names and regions ----------------------------------------------------------

  async function loadTags() {
    const ticket = claim("tags");
    const cloud = state.cloud;
    $("snapshot").textContent = "loading…";
    state.tags = new Map();
    $("tag-names").replaceChildren();
    $("region-names").replaceChildren();
    try {
      const doc = await call("/v1/tags", { cloud: cloud });
      if (!current("tags", ticket)) return;
      const regions = new Set();
      const options = [];
      for (const tag of doc.tags) {
        state.tags.set(tag.name.toLowerCase(), tag);
        options.push(el("option", { value: tag.name }));
        if (tag.region) regions.add(tag.region);
      }
      $("tag-names").replaceChildren(...options);
      $("region-names").replaceChildren(
        ...[...regions].sort().map((region) => el("option", { value: region })),
      );
      $("snapshot").textContent =
        snapshotText(doc.snapshot) + ", " + doc.tags.length.toLocaleString("en") + " tags";
      showError("tag-error", null);
    } catch (error) {
      if (!current("tags", ticket)) return;
      $("snapshot").textContent = error.message;
    }
  }

  async function loadProfiles() {
    const select = $("profile-select");
    try {
      state.profiles = await call("/v1/profiles");
      select.replaceChildren(
        ...state.profiles.map((p) => el("option", { value: p.name, text: p.name })),
      );
      describeProfile();
    } catch (error) {
      showError("profile-error", error);
    }
  }

  function describeProfile() {
    const chosen = state.profiles.find((p) => p.name === $("profile-select").value);
    $("profile-description").textContent = chosen
      ? chosen.description + " (" + plural(chosen.rules, "rule") + ", " +
        plural(chosen.fqdns, "host name") + ")"
      : "";
  }

  // -- a tag's prefixes --------------------------------------------------------------------------

  async function showTag(name) {
    const form = $("tag-form");
    const ticket = claim("tag");
    const aggregate = $("tag-aggregate").checked;
    busy(form, true);
    try {
      const doc = await call("/v1/tags/" + encodeURIComponent(name), {
        cloud: state.cloud,
        aggregate: aggregate ? "true" : "",
      });
      if (!current("tag", ticket)) return;
      const real = doc.tags[0] || name;
      const facts = state.tags.get(real.toLowerCase());
      $("tag-title").textContent = real;
      const dl = $("tag-facts");
      dl.replaceChildren();
      const fact = (term, value) => dl.append(el("dt", { text: term }), el("dd", { text: value }));
      fact("Snapshot", snapshotText(doc.snapshot));
      if (facts) {
        fact("Region", facts.region || "(none: all regions)");
        fact("Service", facts.system_service || "-");
        fact(
          "networkFeatures",
          facts.network_features === null
            ? "null (not usable in NSG or Azure Firewall rules)"
            : facts.network_features.join(", ") || "[]",
        );
      }
      fact(
        "Prefixes",
        doc.prefixes.length.toLocaleString("en") + (doc.aggregated ? " (aggregated)" : ""),
      );
      $("tag-prefixes").textContent = doc.prefixes.join("\n");
      const feed = apiUrl("/feeds/" + encodeURIComponent(real) + ".txt", {
        cloud: state.cloud,
        aggregate: aggregate ? "1" : "",
      });
      $("tag-feed").href = feed.pathname + feed.search;
      $("tag-result").hidden = false;
      showError("tag-error", null);
      setHash({ tag: real });
      showChart("tag", real);
    } catch (error) {
      if (!current("tag", ticket)) return;
      $("tag-result").hidden = true;
      showError("tag-error", error);
      // a tag no longer in the file may still have a history: draw it when there is one
      showChart("tag", name, undefined, true);
    } finally {
      if (current("tag", ticket)) busy(form, false);
    }
  }

  async function copyPrefixes() {
    const text = $("tag-prefixes").textContent;
    try {
      await navigator.clipboard.writeText(text);
      $("tag-copy").textContent = "Copied";
    } catch (error) {
      // no clipboard (a page over plain http elsewhere than localhost): select the text instead
      const range = document.createRange();
      range.selectNodeContents($("tag-prefixes"));
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      $("tag-copy").textContent = "Selected: press Ctrl+C";
    }
    window.setTimeout(() => ($("tag-copy").textContent = "Copy prefixes"), 2500);
  }

  // -- address lookup ----------------------------------------------------------------------------

  async function lookup() {
    const form = $("lookup-form");
    const addresses = $("lookup-input")
      .value.split(/\r?\n/)
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith("#"));
    if (!addresses.length) {
      showError("lookup-error", new Error("Paste at least one address or CIDR, one per line."));
      return;
    }
    if (addresses.length > MAX_ADDRESSES) {
      showError(
        "lookup-error",
        new Error(
          addresses.length.toLocaleString("en") + " lines: at most " +
          MAX_ADDRESSES.toLocaleString("en") + " addresses at once.",
        ),
      );
      return;
    }
    const ticket = claim("lookup");
    busy(form, true);
    try {
      const doc = await call("/v1/lookup", null, {
        method: "POST",
        headers: { Accept: "application/json", "Content-Type": "application/json" },
        body: JSON.stringify({ addresses: addresses, cloud: state.cloud }),
      });
      if (!current("lookup", ticket)) return;
      renderLookup(doc);
      showError("lookup-error", null);
    } catch (error) {
      if (!current("lookup", ticket)) return;
      $("lookup-result").hidden = true;
      showError("lookup-error", error);
    } finally {
      if (current("lookup", ticket)) busy(form, false);
    }
  }

  function tagLink(name) {
    const button = el("button", { type: "button", class: "link", text: name });
    button.addEventListener("click", () => {
      $("tag-input").value = name;
      showTag(name);
      $("tag-section").scrollIntoView();
    });
    return button;
  }

  function renderLookup(doc) {
    const rows = [];
    let found = 0;
    let errors = 0;
    for (const answer of doc.answers) {
      const matches = [
        ...(answer.tags || []).map((m) => [m, ""]),
        ...(answer.inside || []).map((m) => [m, "inside: "]),
      ];
      const address = el("th", { scope: "row", class: "query", text: answer.query });
      if (answer.error !== undefined) {
        errors += 1;
        rows.push(el("tr", { class: "bad" }, address, el("td", { colspan: "4", text: answer.error })));
        continue;
      }
      if (!matches.length) {
        rows.push(
          el("tr", { class: "none" }, address, el("td", { colspan: "4", text: "in no service tag" })),
        );
        continue;
      }
      found += 1;
      address.rowSpan = matches.length;
      matches.forEach(([match, how], n) => {
        const tag = el("td", { class: "tag" }, how, tagLink(match.tag));
        const cells = [
          tag,
          el("td", { class: "prefix", text: match.prefix }),
          el("td", { text: match.region || "-" }),
          el("td", { text: match.system_service || "-" }),
        ];
        rows.push(el("tr", { class: n ? "more" : "first" }, ...(n ? cells : [address, ...cells])));
      });
    }
    $("lookup-table").tBodies[0].replaceChildren(...rows);
    let summary =
      doc.answers.length + (doc.answers.length === 1 ? " entry" : " entries") + ", " + found +
      " in a service tag";
    if (errors) summary += ", " + errors + " not an address";
    summary += "; " + snapshotText(doc.snapshot) + ".";
    if (doc.stale) {
      summary += " Stale: the file is " + doc.stale.age_days + " days old.";
    }
    $("lookup-summary").textContent = summary;
    $("lookup-result").hidden = false;
  }

  // -- requirement profile -----------------------------------------------------------------------

  async function showProfile(name, region) {
    const form = $("profile-form");
    const ticket = claim("profile");
    busy(form, true);
    try {
      const doc = await call("/v1/profiles/" + encodeURIComponent(name), {
        cloud: state.cloud,
        region: region,
      });
      if (!current("profile", ticket)) return;
      renderProfile(doc);
      showError("profile-error", null);
      setHash({ profile: doc.profile, region: doc.region });
      showChart("profile", doc.profile, doc.region);
    } catch (error) {
      if (!current("profile", ticket)) return;
      $("profile-result").hidden = true;
      showError("profile-error", error);
    } finally {
      if (current("profile", ticket)) busy(form, false);
    }
  }

  function renderProfile(doc) {
    $("profile-title").textContent =
      doc.profile + (doc.region ? " in " + doc.region : "") + " — " + snapshotText(doc.snapshot);
    $("profile-warnings").replaceChildren(
      ...doc.warnings.map((w) => el("li", { text: w })),
      ...doc.missing_rules.map((r) =>
        el("li", { class: "missing", text: "Missing from the file: " + r + " (the list is incomplete)" }),
      ),
    );
    $("profile-rules").tBodies[0].replaceChildren(
      ...doc.rules.map((rule) => {
        let tag;
        if (rule.tag) tag = el("td", { class: "tag" }, tagLink(rule.tag));
        else if (rule.skipped) tag = el("td", { class: "skipped", text: rule.template + " (" + rule.skipped + ")" });
        else tag = el("td", { class: "missing", text: rule.template + " (missing)" });
        return el(
          "tr",
          { class: rule.missing ? "rule missing" : "rule" },
          el("td", { text: rule.direction }),
          el("td", { text: rule.protocol }),
          el("td", { text: rule.ports }),
          tag,
          el("td", { class: "num", text: rule.ipv4 }),
          el("td", { class: "num", text: rule.ipv6 }),
          el("td", { text: rule.purpose || "" }),
        );
      }),
    );
    $("profile-union").textContent =
      "Union of the rules: " + doc.union.ipv4.toLocaleString("en") + " IPv4 and " +
      doc.union.ipv6.toLocaleString("en") + " IPv6 prefixes.";
    $("profile-feed").href =
      "/feeds/profile/" + encodeURIComponent(doc.profile) + ".txt" +
      apiUrl("/", { region: doc.region, cloud: state.cloud }).search;
    $("profile-fqdns").tBodies[0].replaceChildren(
      ...doc.fqdns.map((f) =>
        el(
          "tr",
          {},
          el("td", { class: "host", text: f.host }),
          el("td", { text: f.protocol }),
          el("td", { text: f.ports }),
          el("td", { text: f.purpose || "" }),
        ),
      ),
    );
    $("profile-fqdns").hidden = !doc.fqdns.length;
    $("profile-result").hidden = false;
  }

  // -- the chart ---------------------------------------------------------------------------------

  async function showChart(kind, name, region, quiet) {
    const ticket = claim("chart");
    const path =
      kind === "tag"
        ? "/v1/tags/" + encodeURIComponent(name) + "/history"
        : "/v1/profiles/" + encodeURIComponent(name) + "/history";
    const subject =
      kind === "tag" ? "tag " + name : "profile " + name + (region ? " in " + region : "");
    $("chart-subject").textContent = "Loading the history of " + subject + "…";
    try {
      const doc = await call(path, { cloud: state.cloud, region: region });
      if (!current("chart", ticket)) return;
      drawChart(doc.series, subject, kind === "profile");
      showError("chart-error", null);
    } catch (error) {
      if (!current("chart", ticket)) return;
      $("chart-result").hidden = true;
      $("chart-subject").textContent = "";
      showError("chart-error", quiet ? null : error);
    }
  }

  function describePoint(point) {
    let text =
      (point.file_date || "?") + ", changeNumber " + point.change_number + ": ";
    if (point.baseline) {
      text += "first stored snapshot, " + (point.prefixes ?? 0).toLocaleString("en") +
        " prefixes (where the history begins, not a change)";
    } else {
      text += "+" + point.prefixes_added + " added, −" + point.prefixes_removed + " removed, " +
        (point.prefixes === null ? "not in the file" : point.prefixes.toLocaleString("en") + " prefixes");
    }
    return text;
  }

  function drawChart(series, subject, summed) {
    const n = series.length;
    const changes = series.filter((p) => !p.baseline);
    const added = changes.reduce((sum, p) => sum + p.prefixes_added, 0);
    const removed = changes.reduce((sum, p) => sum + p.prefixes_removed, 0);
    const changed = changes.filter((p) => p.prefixes_added || p.prefixes_removed).length;
    const first = series[0];
    const last = series[n - 1];
    $("chart-subject").textContent =
      "Prefixes added and removed in each stored snapshot of " + subject +
      (summed ? " (summed over its tags)" : "") + ": " + n + " snapshots" +
      (n ? " from " + first.file_date + " to " + last.file_date : "") + ".";

    const slot = Math.max(14, Math.min(48, 760 / Math.max(n, 1)));
    const left = 64;
    const top = 28;
    const plot = 180;
    const bottom = 78;
    const width = Math.max(left + slot * n + 16, left + 450);
    const height = top + plot + bottom;
    const most = (key) => Math.max(1, ...changes.map((p) => p[key]));
    const maxUp = most("prefixes_added");
    const maxDown = most("prefixes_removed");
    // one scale for both directions (a bar's height is its count), each side at least a fifth
    const upHeight = plot * Math.min(0.8, Math.max(0.2, maxUp / (maxUp + maxDown)));
    const perPrefix = Math.min(upHeight / maxUp, (plot - upHeight) / maxDown);
    const mid = top + upHeight;
    const px = (count) => (count ? Math.max(1.5, count * perPrefix) : 0);

    const root = svg("svg", {
      viewBox: "0 0 " + width + " " + height,
      width: width,
      height: height,
      role: "img",
      tabindex: "0",
      "aria-labelledby": "chart-title chart-desc",
      class: "changes",
    });
    root.append(
      svg("title", { id: "chart-title" }, "Changes over time: " + subject),
      svg(
        "desc",
        { id: "chart-desc" },
        n + " snapshots; " + changed + " with changes; " + added + " prefixes added and " +
          removed + " removed in all. Use the left and right arrow keys to read each snapshot.",
      ),
    );
    const axis = svg("g", { class: "axis" });
    axis.append(
      svg("line", { x1: left, x2: width - 8, y1: mid, y2: mid, class: "zero" }),
      svg("line", { x1: left, x2: left, y1: top, y2: top + plot }),
      svg("text", { x: left - 6, y: mid + 4, "text-anchor": "end" }, "0"),
    );
    const legend = svg("g", { class: "legend" });
    [
      ["added", "prefixes added"],
      ["removed", "prefixes removed"],
      ["start", "first stored snapshot"],
    ].forEach(([kind, label], i) => {
      const x = left + i * 150;
      legend.append(
        svg("rect", { class: kind, x: x, y: 2, width: 10, height: 10 }),
        svg("text", { x: x + 14, y: 11 }, label),
      );
    });
    root.append(legend);
    for (const [value, y] of [
      ["+" + maxUp, mid - px(maxUp) + 4],
      ["−" + maxDown, mid + px(maxDown) + 4],
    ]) {
      if (Math.abs(y - 4 - mid) >= 12) {
        axis.append(svg("line", { x1: left - 3, x2: left, y1: y - 4, y2: y - 4 }));
        axis.append(svg("text", { x: left - 6, y: y, "text-anchor": "end" }, value));
      }
    }
    root.append(axis);

    const labelEvery = Math.max(1, Math.ceil(14 / slot));
    const bars = svg("g", { class: "bars" });
    series.forEach((point, i) => {
      const x = left + i * slot;
      const barWidth = Math.max(4, slot * 0.7);
      const bx = x + (slot - barWidth) / 2;
      const group = svg("g", {
        class: "bar" + (point.baseline ? " baseline" : ""),
        "data-index": i,
        "data-change-number": point.change_number,
        "data-file-date": point.file_date || "",
        "data-added": point.prefixes_added,
        "data-removed": point.prefixes_removed,
      });
      group.append(svg("title", {}, describePoint(point)));
      group.append(svg("rect", { class: "hit", x: x, y: top, width: slot, height: plot }));
      if (point.baseline) {
        group.append(svg("rect", { class: "start", x: bx, y: mid - 10, width: barWidth, height: 20 }));
      } else {
        const up = px(point.prefixes_added);
        const down = px(point.prefixes_removed);
        group.append(
          svg("rect", { class: "added", x: bx, y: mid - up, width: barWidth, height: up }),
          svg("rect", { class: "removed", x: bx, y: mid, width: barWidth, height: down }),
        );
      }
      if (i % labelEvery === 0 || i === n - 1) {
        const lx = x + slot / 2;
        const ly = top + plot + 12;
        group.append(
          svg(
            "text",
            { class: "date", x: lx, y: ly, transform: "rotate(-45 " + lx + " " + ly + ")", "text-anchor": "end" },
            point.file_date || String(point.change_number),
          ),
        );
      }
      group.addEventListener("mouseenter", () => select(i));
      group.addEventListener("click", () => select(i));
      bars.append(group);
    });
    root.append(bars);

    let selected = -1;
    function select(i) {
      if (i < 0 || i >= n) return;
      const groups = bars.querySelectorAll("g.bar");
      if (selected >= 0) groups[selected].classList.remove("selected");
      selected = i;
      groups[i].classList.add("selected");
      $("chart-readout").textContent = describePoint(series[i]);
    }
    root.addEventListener("keydown", (event) => {
      const moves = { ArrowLeft: selected - 1, ArrowRight: selected + 1, Home: 0, End: n - 1 };
      if (!(event.key in moves)) return;
      event.preventDefault();
      select(selected < 0 && event.key.startsWith("Arrow") ? n - 1 : moves[event.key]);
    });
    root.addEventListener("focus", () => {
      if (selected < 0) select(n - 1);
    });

    $("chart").replaceChildren(root);
    $("chart-readout").textContent =
      first && first.baseline
        ? "The dashed box is the first stored snapshot, where the history begins: its prefixes " +
          "are not counted as added."
        : "";
    $("chart-table").tBodies[0].replaceChildren(
      ...series.map((p) =>
        el(
          "tr",
          { class: p.baseline ? "baseline" : "" },
          el("td", { text: p.change_number }),
          el("td", { text: p.file_date || "-" }),
          el("td", { class: "num", text: p.prefixes === null ? "-" : p.prefixes }),
          el("td", { class: "num", text: p.baseline ? "(start)" : "+" + p.prefixes_added }),
          el("td", { class: "num", text: p.baseline ? "" : "−" + p.prefixes_removed }),
        ),
      ),
    );
    $("chart-result").hidden = false;
  }

  // -- wiring ------------------------------------------------------------------------------------

  function fromHash() {
    const params = new URLSearchParams(window.location.hash.slice(1));
    const cloud = params.get("cloud");
    if (cloud && [...$("cloud").options].some((o) => o.value === cloud)) {
      $("cloud").value = cloud;
    }
    return params;
  }

  async function start() {
    const params = fromHash();
    state.cloud = $("cloud").value;
    $("cloud").addEventListener("change", () => {
      state.cloud = $("cloud").value;
      for (const id of ["tag-result", "lookup-result", "profile-result", "chart-result"]) {
        $(id).hidden = true;
      }
      setHash({});
      loadTags();
    });
    $("tag-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const name = $("tag-input").value.trim();
      if (name) showTag(name);
    });
    $("tag-copy").addEventListener("click", copyPrefixes);
    $("lookup-form").addEventListener("submit", (event) => {
      event.preventDefault();
      lookup();
    });
    $("lookup-input").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        lookup();
      }
    });
    $("profile-form").addEventListener("submit", (event) => {
      event.preventDefault();
      showProfile($("profile-select").value, $("profile-region").value.trim());
    });
    $("profile-select").addEventListener("change", describeProfile);
    // in-page links scroll without replacing the #tag=... that makes the page's address a link
    for (const link of document.querySelectorAll('a[href="#chart-section"]')) {
      link.addEventListener("click", (event) => {
        event.preventDefault();
        $("chart-section").scrollIntoView();
        $("chart-heading").setAttribute("tabindex", "-1");
        $("chart-heading").focus();
      });
    }

    await Promise.all([loadTags(), loadProfiles()]);
    if (params.get("tag")) {
      $("tag-input").value = params.get("tag");
      showTag(params.get("tag"));
    } else if (params.get("profile")) {
      $("profile-select").value = params.get("profile");
      $("profile-region").value = params.get("region") || "";
      describeProfile();
      showProfile(params.get("profile"), params.get("region") || "");
    }
    document.body.dataset.ready = "true";
  }

  document.addEventListener("DOMContentLoaded", start);
})();
