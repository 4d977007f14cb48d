// The Ajax cart kit's script: the per-visitor part of shared pages, so the HTML itself can be
// cached for everyone. Plain ES5-ish JavaScript, no build step.
//
// DOM contract (pagecache/templates/pagecache/ writes it; any markup that follows it works):
//
//   [data-cart-url]         The kit's configuration, on one element (cart_badge.html puts it on
//                           the badge); the first such element counts.
//     data-cart-url         The cart API. GET answers the visitor's cart as JSON, {"count": N, ...},
//                           and hands out the csrftoken cookie.
//     data-cart-items-url   The add API. POST {"product": id, "quantity": N} (JSON, with the
//                           X-CSRFToken header) adds to the cart and answers the cart as above;
//                           a refusal answers {"error": "message"} with a 4xx status.
//     data-cart-hint-cookie The hint cookie's name (default "cart_hint").
//   [data-cart-count]       Every cart badge: its text becomes the count, and it has the class
//                           "empty" while the count is 0.
//   form[data-add-to-cart]  An add form; the attribute's value is the product's id as the API
//                           takes it. Its `quantity` field is the quantity (1 without one). On
//                           submit the script posts to the add API instead; the form's buttons
//                           are disabled until the answer. Without JavaScript the form does what
//                           its markup says (add_to_cart.html: a GET of the private cart page).
//   [data-add-status]       Inside an add form: gets "Added to your cart." or the API's error
//                           message, and the class "error" while it shows an error.
//
// The badge costs no request: every cart answer of the server (both APIs, and the private cart
// pages) sets the hint cookie "<count>.<refresh_after_unix_seconds>" with pagecache.hint.set_hint,
// and the script shows its count. No hint: 0. A hint past its refresh time: its count at once,
// then one GET of the cart API, whose answer corrects the badge and the hint. Tabs left open
// follow an add at once (BroadcastChannel); a page restored from the back/forward cache reads
// the hint again.
//
// CSRF: shared pages carry no token; the script sends the csrftoken cookie's value in the
// X-CSRFToken header (so CSRF_COOKIE_HTTPONLY must stay False, Django's default). A visitor
// without that cookie gets it with one GET of the cart API at the first add: two requests.
//
// Retries: each add carries an Idempotency-Key header, fresh per action. When no answer comes,
// or a 502/503/504 does, the script sends the same request again, with the same key, twice at
// most: a server that honours the key (shop/idempotency.py) applies it once, whatever happened
// to the first try.
(function () {
  "use strict";

  function readConfig() {
    var holder = document.querySelector("[data-cart-url]");
    if (!holder) {
      return null;
    }
    return {
      cartUrl: holder.getAttribute("data-cart-url"),
      itemsUrl: holder.getAttribute("data-cart-items-url"),
      hintCookie: holder.getAttribute("data-cart-hint-cookie") || "cart_hint",
    };
  }

  function readCookie(name) {
    var pairs = document.cookie ? document.cookie.split(/;\s*/) : [];
    for (var i = 0; i < pairs.length; i++) {
      var at = pairs[i].indexOf("=");
      if (pairs[i].slice(0, at) === name) {
        try {
          return decodeURIComponent(pairs[i].slice(at + 1));
        } catch (error) {
          return pairs[i].slice(at + 1);
        }
      }
    }
    return null;
  }

  function csrfToken() {
    return readCookie("csrftoken") || "";
  }

  // The hint as {count, refreshAt (ms)}; null without one. One that cannot be read is due a check.
  function readHint(config) {
    var value = readCookie(config.hintCookie);
    if (value === null) {
      return null;
    }
    var match = /^(\d+)\.(\d+)$/.exec(value);
    if (!match) {
      return { count: 0, refreshAt: 0 };
    }
    return { count: parseInt(match[1], 10), refreshAt: parseInt(match[2], 10) * 1000 };
  }

  function showCount(count) {
    document.querySelectorAll("[data-cart-count]").forEach(function (badge) {
      badge.textContent = String(count);
      badge.classList.toggle("empty", count === 0);
    });
  }

  function say(status, text, isError) {
    if (status) {
      status.textContent = text;
      status.classList.toggle("error", isError);
    }
  }

  function setBusy(form, busy) {
    form.querySelectorAll("button, input[type=submit]").forEach(function (button) {
      button.disabled = busy;
    });
  }

  // Fetch a cart answer: the cart as JSON, or an Error with the API's message.
  function api(url, options) {
    options = options || {};
    options.credentials = "same-origin";
    options.headers = Object.assign({ Accept: "application/json" }, options.headers || {});
    return fetch(url, options).then(function (response) {
      return response
        .json()
        .catch(function () {
          return {};
        })
        .then(function (body) {
          if (!response.ok || typeof body.count !== "number") {
            var error = new Error(body.error || "The cart could not be updated.");
            error.status = response.status;
            throw error;
          }
          return body;
        });
    });
  }

  // Tabs of this site tell each other that the cart changed; each then re-reads the hint.
  var channel = null;

  function cartChanged(cart) {
    showCount(cart.count);
    if (channel) {
      channel.postMessage("changed");
    }
    return cart;
  }

  // Ask the server: its answer corrects the hint cookie and hands out the CSRF cookie.
  function loadCart(config) {
    return api(config.cartUrl).then(cartChanged);
  }

  // Show the hint's count; past its refresh time, ask the server once to correct it.
  function showHint(config) {
    var hint = readHint(config);
    showCount(hint ? hint.count : 0);
    if (hint && hint.refreshAt <= Date.now()) {
      loadCart(config).catch(function () {
        // Keep the hint's count; the next page view asks again.
      });
    }
  }

  // The CSRF cookie, fetched only before a visitor's first add: browsing costs no request.
  function csrfReady(config) {
    return csrfToken() ? Promise.resolve() : loadCart(config);
  }

  // A fresh key for each action of the visitor (the IETF Idempotency-Key draft): the server
  // answers a repeat of a key with its first outcome and never applies it twice.
  function newIdempotencyKey() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (byte) {
        return ("0" + byte.toString(16)).slice(-2);
      })
      .join("");
  }

  // Waits before sending a write again (ms): two more tries, then the error is shown.
  var RETRY_DELAYS = [500, 1500];

  // Send a write; send it again, with the same key, when no answer came (the network, a worker
  // that died) or the store said it is briefly unavailable. Safe: one key is applied once.
  function sendWrite(url, options, attempt) {
    attempt = attempt || 0;
    return api(url, options).catch(function (error) {
      var retryable = !error.status || error.status === 502 || error.status === 503 || error.status === 504;
      if (!retryable || attempt >= RETRY_DELAYS.length) {
        throw error;
      }
      return new Promise(function (resolve) {
        setTimeout(resolve, RETRY_DELAYS[attempt]);
      }).then(function () {
        return sendWrite(url, options, attempt + 1);
      });
    });
  }

  function addToCart(config, form) {
    var status = form.querySelector("[data-add-status]");
    var field = form.elements.quantity;
    var quantity = field ? parseInt(field.value, 10) : 1;
    var key = newIdempotencyKey();
    setBusy(form, true);
    say(status, "", false);
    csrfReady(config)
      .then(function () {
        return sendWrite(config.itemsUrl, {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(), "Idempotency-Key": key },
          body: JSON.stringify({ product: form.getAttribute("data-add-to-cart"), quantity: quantity }),
        });
      })
      .then(function (cart) {
        cartChanged(cart);
        say(status, "Added to your cart.", false);
      })
      .catch(function (error) {
        say(status, error.message, true);
      })
      .finally(function () {
        setBusy(form, false);
      });
  }

  function start() {
    var config = readConfig();
    if (!config) {
      return; // no cart kit on this page
    }
    if (window.BroadcastChannel) {
      channel = new BroadcastChannel("pagecache-cart");
      channel.onmessage = function () {
        showCount((readHint(config) || { count: 0 }).count);
      };
    }
    showHint(config);
    document.querySelectorAll("form[data-add-to-cart]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        addToCart(config, form);
      });
    });
    window.addEventListener("pageshow", function (event) {
      if (event.persisted) {
        showHint(config); // back from the back/forward cache: the hint may have changed
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
