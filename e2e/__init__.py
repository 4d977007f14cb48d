"""End-to-end checks of a Corner Shop deployment: `python -m e2e https://shop.example/`.

A client only: it reads pages and creates carts of its own, one request at a time, and never
imports the project's Django code, so it runs against any deployment from any machine.
docs/e2e.md lists the checks and what a failure of each usually means.
"""
