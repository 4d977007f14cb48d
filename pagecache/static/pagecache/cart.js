// The Ajax cart kit's script: the per-visitor part of shared pages, loaded with fetch() so the
// HTML itself can be cached for everyone. Plain ES5-ish JavaScript, no build step.
//
// DOM contract (pagecache/templates/pagecache/ writes it; any markup that follows it works):
//
//   [data-cart-url]        The kit's configuration, on one element (cart_badge.html puts it on
//                          the badge); the first such element counts.
//     data-cart-url        The cart API. GET answers the visitor's cart as JSON, {"count": N, ...},
//                          and hands out the csrftoken cookie.
//     data-cart-items-url  The add API. POST {"product": id, "quantity": N} (JSON, with the
//                          X-CSRFToken header) adds to the cart and answers the cart as above;
//                          a refusal answers {"error": "message"} with a 4xx status.
//   [data-cart-count]      Every cart badge: its text becomes the count, and it has the class
//                          "empty" while the count is 0.
//   form[data-add-to-cart] An add form; the attribute's value is the product's id as the API
//                          takes it. Its `quantity` field is the quantity (1 without one). On
//                          submit the script posts to the add API instead; the form's buttons
//                          are disabled until the answer. Without JavaScript the form does what
//                          its markup says (add_to_cart.html: a GET of the private cart page).
//   [data-add-status]      Inside an add form: gets "Added to your cart." or the API's error
//                          message, and the class "error" while it shows an error.
//
// CSRF: shared pages carry no token; the script sends the csrftoken cookie's value in the
// X-CSRFToken header (so CSRF_COOKIE_HTTPONLY must stay False, Django's default).
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
    };
  }

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
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
            throw new Error(body.error || "The cart could not be updated.");
          }
          return body;
        });
    });
  }

  function loadCart(config) {
    return api(config.cartUrl).then(function (cart) {
      showCount(cart.count);
      return cart;
    });
  }

  function addToCart(config, form, ready) {
    var status = form.querySelector("[data-add-status]");
    var field = form.elements.quantity;
    var quantity = field ? parseInt(field.value, 10) : 1;
    setBusy(form, true);
    say(status, "", false);
    ready
      .then(function () {
        return api(config.itemsUrl, {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
          body: JSON.stringify({ product: form.getAttribute("data-add-to-cart"), quantity: quantity }),
        });
      })
      .then(function (cart) {
        showCount(cart.count);
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
    // The first GET hands out the CSRF cookie; adds wait for it. A failure leaves the badge
    // empty: the store still works, and the cart page shows the cart.
    var ready = loadCart(config).catch(function () {});
    document.querySelectorAll("form[data-add-to-cart]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        addToCart(config, form, ready);
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
