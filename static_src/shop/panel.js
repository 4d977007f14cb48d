// The demo's serving panel: how this very page reached this browser, in words. Loaded only when
// SHOP_SERVING_PANEL is on (the demo); plain ES5-ish JavaScript, no build step, no request.
//
// Everything comes from what the browser measured itself:
//   performance.getEntriesByType("navigation")[0]
//     .serverTiming  Django's part (pagecache/timing.py): `django` with desc HIT, MISS, STALE or
//                    UNCACHED (none on a private answer) and, when it rendered, the duration and
//                    `django-db` ("N queries"); then Varnish's (deploy/varnish/shop.vcl,
//                    add_server_timing): `varnish` with desc HIT, MISS, PASS or GRACE and, for a
//                    copy, `varnish-age` (its Age in seconds). A copy keeps the Django part of the
//                    answer it was made from: a Varnish HIT tells how that copy was rendered.
//     .transferSize  the bytes that crossed the network (0: from the browser's own cache)
//     .requestStart, .responseStart  the wait for the first byte
//   performance.getEntriesByType("resource")  this page's requests to the cart API, if any
//
// The frame it fills (shop/templates/shop/includes/serving_panel.html) is part of the shared
// HTML, the same for everyone, and so is this file: only what each browser measured differs.
// The words go into a shadow root of each line, which shows instead of the line's own text: the
// document itself stays the same in every browser, as before (only the cart badge's count
// differs; tests/browser/test_two_browsers_through_stack.py compares two browsers' documents).
//   [data-serving-panel]  the panel; gets data-serving-state="done" once written
//   [data-serving-page]   "This page: ..." (in its shadow root)
//   [data-serving-cart]   "Your cart: ..." (in its shadow root)
(function () {
  "use strict";

  // Server-Timing entries by name: {django: {desc: "MISS", ms: 8.1}, varnish: {desc: "HIT"}, ...}.
  function serverTiming(entry) {
    var byName = {};
    (entry.serverTiming || []).forEach(function (timing) {
      byName[timing.name] = { desc: timing.description, ms: timing.duration };
    });
    return byName;
  }

  function milliseconds(value) {
    return value < 1 ? "under 1 ms" : Math.round(value) + " ms";
  }

  // What Django did for the answer this copy came from.
  function djangoPart(timing, once) {
    var django = timing.django;
    if (!django) {
      return "";
    }
    var render = "rendered " + (once ? "once " : "") + "by Django in " + milliseconds(django.ms);
    if (timing["django-db"]) {
      render += ", " + timing["django-db"].desc;
    }
    switch (django.desc) {
      case "HIT":
        return "copied from Django's cache, no render";
      case "STALE":
        return "an expired copy from Django's cache, served while one request renders it anew";
      case "MISS":
        return render;
      case "UNCACHED":
        return render + ", not stored";
      default:
        return render + ", for you alone"; // a private answer names no cache outcome
    }
  }

  // What Varnish did, then what Django did for the copy it served.
  function serversPart(timing) {
    var edge = timing.varnish ? timing.varnish.desc : "";
    var age = timing["varnish-age"] ? timing["varnish-age"].desc + " s old" : "";
    var parts;
    if (edge === "HIT") {
      parts = ["Varnish HIT", age, djangoPart(timing, true)];
    } else if (edge === "GRACE") {
      parts = ["Varnish GRACE (past its TTL, served while Varnish fetches a fresh copy)", age, djangoPart(timing, true)];
    } else if (edge === "MISS") {
      parts = ["Varnish MISS", djangoPart(timing, false)];
    } else if (edge === "PASS") {
      parts = ["Varnish PASS (private, never cached)", djangoPart(timing, false)];
    } else {
      parts = ["no Varnish in front", djangoPart(timing, false)];
    }
    return parts.filter(Boolean).join(", ");
  }

  function networkPart(entry) {
    if (!entry.transferSize) {
      return "from your browser's cache, no request";
    }
    var size = (entry.transferSize / 1024).toFixed(1) + " kB";
    return size + " over the network, first byte in " + milliseconds(entry.responseStart - entry.requestStart);
  }

  function describePage(entry) {
    if (!entry) {
      return "This page: your browser does not say how it was served.";
    }
    if (!entry.serverTiming || !entry.serverTiming.length) {
      return "This page: no Server-Timing reached your browser; " + networkPart(entry) + ".";
    }
    return "This page: " + serversPart(serverTiming(entry)) + "; " + networkPart(entry) + ".";
  }

  // The cart API's address, as the badge tells cart.js; its paths all start with it.
  function cartApiPrefix() {
    var holder = document.querySelector("[data-cart-url]");
    return holder ? holder.getAttribute("data-cart-url") : "/api/cart/";
  }

  function cartRequests(prefix) {
    return performance.getEntriesByType("resource").filter(function (resource) {
      return new URL(resource.name, location.href).pathname.indexOf(prefix) === 0;
    }).length;
  }

  function describeCart(entry, count) {
    var timing = entry ? serverTiming(entry) : {};
    if (timing.varnish && timing.varnish.desc === "PASS") {
      return "Your cart: on this private page, made for you alone.";
    }
    if (count === 0) {
      return "Your cart: in your browser (the badge reads a cookie), no request.";
    }
    return "Your cart: " + count + (count === 1 ? " request" : " requests") + " to the cart API from this page, never cached.";
  }

  // Show `text` instead of the line's own words, without changing the document.
  function show(line, text) {
    (line.shadowRoot || line.attachShadow({ mode: "open" })).textContent = text;
  }

  function write(panel, page, cart) {
    show(panel.querySelector("[data-serving-page]"), page);
    show(panel.querySelector("[data-serving-cart]"), cart);
    panel.setAttribute("data-serving-state", "done");
  }

  function start() {
    var panel = document.querySelector("[data-serving-panel]");
    if (!panel || !window.performance || !performance.getEntriesByType) {
      return;
    }
    var entry = performance.getEntriesByType("navigation")[0];
    var prefix = cartApiPrefix();
    var page = describePage(entry);
    var refresh = function () {
      write(panel, page, describeCart(entry, cartRequests(prefix)));
    };
    refresh();
    // A request to the cart API later on (an add, a due hint check) shows as it happens.
    if (window.PerformanceObserver) {
      new PerformanceObserver(refresh).observe({ type: "resource" });
    }
    window.addEventListener("pageshow", function (event) {
      if (event.persisted) {
        page = "This page: back from your browser's memory (back/forward cache), no request.";
        refresh();
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
