// The per-visitor part of every page, loaded with fetch() so the HTML itself can be shared.
//  1. Fill the cart badge from GET /api/cart/ (never cached; it also sets the CSRF cookie).
//  2. Turn "Add to cart" forms into POST /api/cart/items/ calls that update the badge in place.
// Without JavaScript the same forms lead to a private confirm page on /cart/.
(function () {
  "use strict";

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function showCount(cart) {
    document.querySelectorAll("[data-cart-count]").forEach(function (badge) {
      badge.textContent = String(cart.count);
      badge.classList.toggle("empty", cart.count === 0);
    });
  }

  function api(url, options) {
    options = options || {};
    options.credentials = "same-origin";
    options.headers = Object.assign({ Accept: "application/json" }, options.headers || {});
    return fetch(url, options).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) {
          throw new Error(body.error || "The cart could not be updated.");
        }
        return body;
      });
    });
  }

  function loadCart() {
    return api("/api/cart/").then(showCount);
  }

  function addToCart(form) {
    var status = form.querySelector(".add-status");
    var button = form.querySelector("button");
    var quantity = parseInt(form.elements.quantity.value, 10);
    button.disabled = true;
    status.textContent = "";
    status.classList.remove("error");
    api("/api/cart/items/", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify({ product: form.dataset.product, quantity: quantity }),
    })
      .then(function (cart) {
        showCount(cart);
        status.textContent = "Added to your cart.";
      })
      .catch(function (error) {
        status.textContent = error.message;
        status.classList.add("error");
      })
      .finally(function () {
        button.disabled = false;
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var ready = loadCart().catch(function () {
      // The store still works without the badge; the cart page shows the cart.
    });
    document.querySelectorAll("form.add-to-cart").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        // The first GET hands out the CSRF cookie; wait for it before posting.
        ready.then(function () {
          addToCart(form);
        });
      });
    });
  });
})();
